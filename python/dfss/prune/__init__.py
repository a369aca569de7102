"""Block-structured N:M weight pruning of BERT-family encoders, distillation against the dense
model, and export of a folder that dfss runs on its block-sparse kernels (docs/weight-sparsity.md).

    python -m dfss.prune --model models/all-MiniLM-L6-v2 --pattern 2:4x16 --method wanda \\
        --distill-steps 200 --out out/prune/minilm-2-4x16

Modules: masks (the pattern, magnitude and activation-aware masks, the compressed form),
distill (embedding distillation with the masks held), export (the model folder and
dfss_block_sparse.safetensors).
"""
