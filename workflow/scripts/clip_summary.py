"""Tables 1-3 and the accuracy figures of task 2, from the per-lambda code files."""

import os

from deepunfold.clip.cache import read_embeddings
from deepunfold.clip.codes import read_codes
from deepunfold.clip.summary import memory_table, sparsity_accuracy_table, top_concepts
from deepunfold.figures.clip import plot_accuracy_vs_lambda, plot_accuracy_vs_nnz
from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.pipeline.io import read_table, write_table
from deepunfold.pipeline.jobs import setup_job

log = setup_job(snakemake.log[0])
p = snakemake.params
inp = snakemake.input
dense = read_table(inp.dense).iloc[0]
table1 = sparsity_accuracy_table([read_table(f) for f in inp.summaries])
write_table(table1, snakemake.output.table1)
log.info("Table 1:\n%s", table1.to_string(index=False))

# Table 2: what storing the codes really costs (CSR values + indices + row pointers)
images = read_embeddings(inp.images, kind="image")
n, d = images.embeddings.shape
codes = {}
for path in inp.codes:
    csr, ids, labels, meta = read_codes(path)
    codes[meta["lambda"]] = (csr, os.path.getsize(path))
table2 = memory_table(
    n, d, os.path.getsize(inp.images), [(lam, csr, size) for lam, (csr, size) in codes.items()]
)
write_table(table2, snakemake.output.table2)
log.info("Table 2:\n%s", table2.to_string(index=False))

# Table 3: most active concepts at the report lambda
lam = float(p.report_lambda)
concepts = read_embeddings(inp.concepts, kind="text").names
table3 = top_concepts(codes[lam][0], concepts, p.top_concepts, lam)
write_table(table3, snakemake.output.table3)
log.info("Table 3:\n%s", table3.to_string(index=False))

what = f"{dense['model']} on {int(dense['n_images'])} images, {int(dense['n_concepts'])} concepts"
for plot, png, pdf in [
    (plot_accuracy_vs_lambda, "accuracy", "accuracy_pdf"),
    (plot_accuracy_vs_nnz, "accuracy_nnz", "accuracy_nnz_pdf"),
]:
    fig = plot(table1, float(dense["accuracy"]), float(dense["chance"]), what)
    demo_note(fig, p.note)
    log.info("figure note: %s", p.note)
    save_figure(fig, snakemake.output[png], snakemake.output[pdf])
