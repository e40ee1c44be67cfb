"""``make app``'s path to a drawn Overview imports no torch (1-3 s on 2 cores): the demo's and
the bundles' freshness checks, config validation, the first session's warm-up and the Overview
itself. torch is imported later, by the warm-up's live-search turn."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, **env: str) -> list[str]:
    """The last line of ``code``'s output, split (run in a fresh interpreter in the repo)."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1].split()


def test_config_validation_and_the_demo_check_import_no_torch(tmp_path):
    """Loading and checking the demo configs (every built-in section and trait, the old
    shape's migration included) and the demo's "is everything there?" check."""
    out = _run(f"""
        import sys
        from tvr.config import from_dict, load_config, to_dict
        from tvr.demo.runs import demo_configs, run_complete
        cfgs = demo_configs(checkpoints={str(tmp_path)!r})
        wti = load_config("configs/synthvtt/wti.yaml", ["head.name=tcmgc", "objectives.cdcr=true"])
        old = from_dict({{"model": {{"head": "gare"}}, "gare": {{"regularize": True}}}})
        assert from_dict(to_dict(wti)) == wti
        print(sorted(cfgs), [run_complete(c) for c in cfgs.values()], wti.objective_names,
              old.objective_names, "torch" in sys.modules)
    """)
    assert out == ["['demo-base',", "'demo-drgi']", "[False,", "False]", "['infonce',",
                   "'cdcr',", "'sdr']", "['infonce',", "'gare_reg']", "False"]


def test_fresh_bundles_the_first_session_and_the_overview_import_no_torch(tiny_run_pair):
    """A fresh bundle is kept, the warm-up's first-session steps run and a session draws the
    Overview, all without torch; the live search's warm-up (which imports it) is left out."""
    pair = tiny_run_pair
    out = _run(f"""
        import sys
        from app import warmup
        warmup.start_warm_up = lambda *a, **k: None  # the live search's turn imports torch
        from analysis.export import ExportOptions, export_bundle
        kept = [export_bundle(run, dataset="synthvtt", root={str(pair.data / "synthvtt")!r},
                              options=ExportOptions(projections=("pca",), device="cpu"),
                              progress=False).written
                for run in ({str(pair.base)!r}, {str(pair.drgi)!r})]
        before = "torch" in sys.modules
        from streamlit.testing.v1 import AppTest
        from app.first_session import warm_first_session
        from app.state import AppRoots
        steps = [step for step, _ in warm_first_session(AppRoots.from_env())]
        at = AppTest.from_file("app/main.py", default_timeout=120).run()
        print(kept, before, "card drgi" in steps, len(at.exception),
              len(at.get("plotly_chart")), "torch" in sys.modules)
    """, DRGI_LAB_CHECKPOINTS=str(pair.checkpoints), DRGI_LAB_DATA=str(pair.data))
    assert out == ["[False,", "False]", "False", "True", "0", "2", "False"]


def test_no_page_but_the_live_query_imports_torch_or_transformers(tiny_run_pair):
    """Every page but the Live query is drawn without torch and transformers: the warm-up's
    live-search steps, which import them, let those pages' script runs go on beside them
    (app/warmup.py), which is safe only while none of them imports either."""
    pair = tiny_run_pair
    out = _run("""
        import sys
        from app import warmup
        warmup.start_warm_up = lambda *a, **k: None  # the live search's turn imports torch
        from streamlit.testing.v1 import AppTest
        from app.pages import PAGES
        at = AppTest.from_file("app/main.py", default_timeout=120).run()
        seen = []
        for file, title, *_ in PAGES:
            if not file.endswith("live_query.py"):
                at.switch_page(file).run()
                seen.append(f"{title}:{len(at.exception)}:{'torch' in sys.modules}:"
                            f"{'transformers' in sys.modules}")
        print(" ".join(s.replace(" ", "_") for s in seen))
    """, DRGI_LAB_CHECKPOINTS=str(pair.checkpoints), DRGI_LAB_DATA=str(pair.data))
    assert len(out) == 7 and all(s.endswith(":0:False:False") for s in out), out
