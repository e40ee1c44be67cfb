"""app: the Streamlit analysis workbench (thin pages over analysis/)."""
