"""Analytic FLOP count of one MAE forward: 2*M*N*K per GEMM (attention q.k^T and att.v included); element-wise
work (LayerNorm, softmax, GELU, adds) is left out. A training step counts as 3x the forward.

    model_flops(config, batch, mask_ratio) -> forward FLOPs (int)
config: dict with the official constructor keys (img_size, patch_size, in_chans, embed_dim, depth, num_heads,
decoder_embed_dim, decoder_depth, decoder_num_heads, mlp_ratio).
"""


def _blocks_flops(batch, tokens, dim, depth, mlp_ratio):
    hidden = int(dim * mlp_ratio)
    per_block = (2 * tokens * dim * 3 * dim           # qkv
                 + 2 * tokens * tokens * dim          # q @ k^T over all heads
                 + 2 * tokens * tokens * dim          # att @ v
                 + 2 * tokens * dim * dim             # proj
                 + 2 * tokens * dim * hidden * 2)     # fc1 + fc2
    return batch * depth * per_block


def model_flops(config, batch, mask_ratio):
    img = config["img_size"]
    h, w = (img, img) if isinstance(img, int) else img
    p, C = config["patch_size"], config["in_chans"]
    D, Dd = config["embed_dim"], config["decoder_embed_dim"]
    mlp = config.get("mlp_ratio", 4.0)
    L = (h // p) * (w // p)
    keep = int(L * (1 - mask_ratio))
    n_enc, n_dec = 1 + keep, 1 + L
    flops = 2 * batch * L * (C * p * p) * D                          # patch embed runs on every patch
    flops += _blocks_flops(batch, n_enc, D, config["depth"], mlp)    # encoder sees visible patches + cls
    flops += 2 * batch * n_enc * D * Dd                              # decoder_embed
    flops += _blocks_flops(batch, n_dec, Dd, config["decoder_depth"], mlp)
    flops += 2 * batch * n_dec * Dd * (p * p * C)                    # decoder_pred (cls row dropped after)
    return flops


def train_flops(config, batch, mask_ratio):
    return 3 * model_flops(config, batch, mask_ratio)


if __name__ == "__main__":
    import sys, os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from mae_torch import PRESETS
    for name, cfg in PRESETS.items():
        print(f"{name:24s} forward GFLOP/img at mask 0.75: {model_flops(cfg, 1, 0.75) / 1e9:.3f}")
