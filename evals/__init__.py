"""Offline recall-quality evals for agentmem, run through the public client against a real server.

    from evals.harness import run_eval
    report = run_eval(modes=("hybrid",), max_questions=50, out_dir="evals/out")

Modules: `dataset` (format and loaders), `metrics` (pure ranking metrics), `harness` (ingest,
recall, report), `make_dataset` (the generator of our committed dataset).
"""
