"""Tables 1-3 and the accuracy figures of task 2, from the per-lambda code files."""

import os

import pandas as pd

from deepunfold.clip.cache import read_embeddings
from deepunfold.clip.codes import csr_nbytes, read_codes
from deepunfold.figures.clip import plot_accuracy_vs_lambda, plot_accuracy_vs_nnz
from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.pipeline.io import read_table, write_table
from deepunfold.pipeline.jobs import setup_job

log = setup_job(snakemake.log[0])
p = snakemake.params
inp = snakemake.input
dense = read_table(inp.dense).iloc[0]
table1 = pd.concat([read_table(f) for f in inp.summaries]).sort_values("lambda")
table1.insert(3, "accuracy_pct", 100 * table1["accuracy"])
write_table(table1, snakemake.output.table1)
log.info("Table 1:\n%s", table1.to_string(index=False))

# Table 2: what storing the codes really costs (CSR values + indices + row pointers)
images = read_embeddings(inp.images, kind="image")
n, d = images.embeddings.shape
rows = [
    {
        "representation": "dense float32 image embeddings",
        "lambda": float("nan"),
        "shape": f"{n}x{d}",
        "nnz": n * d,
        "values_bytes": n * d * 4,
        "indices_bytes": 0,
        "indptr_bytes": 0,
        "in_memory_bytes": n * d * 4,
        "parquet_bytes": os.path.getsize(inp.images),
    }
]
codes = {}
for path in inp.codes:
    csr, ids, labels, meta = read_codes(path)
    codes[meta["lambda"]] = (csr, meta)
    b = csr_nbytes(csr)
    rows.append(
        {
            "representation": "sparse codes, CSR (float32 values, int32 indices)",
            "lambda": meta["lambda"],
            "shape": f"{csr.shape[0]}x{csr.shape[1]}",
            "nnz": csr.nnz,
            "values_bytes": b["values"],
            "indices_bytes": b["indices"],
            "indptr_bytes": b["indptr"],
            "in_memory_bytes": b["total"],
            "parquet_bytes": os.path.getsize(path),
        }
    )
table2 = pd.DataFrame(rows).sort_values("lambda", na_position="first")
table2["in_memory_mb"] = table2["in_memory_bytes"] / 2**20
table2["ratio_to_dense"] = table2["in_memory_bytes"] / (n * d * 4)
write_table(table2, snakemake.output.table2)
log.info("Table 2:\n%s", table2.to_string(index=False))

# Table 3: most active concepts at the report lambda
lam = float(p.report_lambda)
if lam not in codes:
    raise ValueError(f"config key 'clip.report_lambda': {lam} is not in clip.lambdas")
concepts = read_embeddings(inp.concepts, kind="text").names
csr = codes[lam][0]
counts = pd.Series((csr != 0).sum(0).A1, index=concepts)
top = (
    pd.DataFrame({"concept": counts.index, "nonzero_count": counts.to_numpy()})
    .sort_values(["nonzero_count", "concept"], ascending=[False, True])
    .head(p.top_concepts)
)
top.insert(0, "rank", range(1, len(top) + 1))
top["fraction_of_images"] = top["nonzero_count"] / csr.shape[0]
top["lambda"] = lam
write_table(top, snakemake.output.table3)
log.info("Table 3:\n%s", top.to_string(index=False))

what = f"{dense['model']} on {int(dense['n_images'])} images, {int(dense['n_concepts'])} concepts"
for plot, png, pdf in [
    (plot_accuracy_vs_lambda, "accuracy", "accuracy_pdf"),
    (plot_accuracy_vs_nnz, "accuracy_nnz", "accuracy_nnz_pdf"),
]:
    fig = plot(table1, float(dense["accuracy"]), float(dense["chance"]), what)
    demo_note(fig, p.note)
    log.info("figure note: %s", p.note)
    save_figure(fig, snakemake.output[png], snakemake.output[pdf])
