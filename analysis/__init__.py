"""analysis: pure computations over a run's saved artefacts (no streamlit)."""
