"""Fine-tuning with dfss attention in the loop (docs/finetune.md).

    python -m dfss.finetune --task wiki --sparsity 2:4 --steps 60 --out out/finetune/wiki-2-4

Modules: data (the wiki and books tasks with fixed splits), train (the contrastive recipe,
single process or torchrun data-parallel), evaluate (MRR@10, R@1, topic kNN, paired test),
balance (cost-balanced micro-batches and rank assignment for variable-length batches).
"""
