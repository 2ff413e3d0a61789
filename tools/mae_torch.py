"""Reference MAE in PyTorch, written from docs/architecture.md §3 (numerically the facebookresearch/mae model).

State-dict names are the official ones, so a state_dict moves between this model, the official one and our
safetensors checkpoints unchanged. Used only to make test fixtures and baseline timings; never at run time.

    python3 tools/mae_torch.py --selfcheck
"""
import math
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

LN_EPS = 1e-6

# Official constructor arguments; the C++ side has the same presets.
PRESETS = {
    "mae_vit_base_patch16": dict(img_size=224, patch_size=16, in_chans=3, embed_dim=768, depth=12, num_heads=12,
                                 decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4.0),
    "mae_vit_large_patch16": dict(img_size=224, patch_size=16, in_chans=3, embed_dim=1024, depth=24, num_heads=16,
                                  decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4.0),
    "mae_vit_huge_patch14": dict(img_size=224, patch_size=14, in_chans=3, embed_dim=1280, depth=32, num_heads=16,
                                 decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4.0),
    "mae_vit_tiny_patch16": dict(img_size=224, patch_size=16, in_chans=3, embed_dim=192, depth=12, num_heads=3,
                                 decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4.0),
    "mae_vit_fmnist": dict(img_size=28, patch_size=4, in_chans=1, embed_dim=192, depth=12, num_heads=3,
                           decoder_embed_dim=128, decoder_depth=4, decoder_num_heads=4, mlp_ratio=4.0),
    "mae_vit_fmnist_small": dict(img_size=28, patch_size=4, in_chans=1, embed_dim=128, depth=6, num_heads=4,
                                 decoder_embed_dim=64, decoder_depth=2, decoder_num_heads=4, mlp_ratio=4.0),
}

CONFIG_KEYS = ("img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads", "decoder_embed_dim",
               "decoder_depth", "decoder_num_heads", "mlp_ratio", "norm_pix_loss")


def _hw(size):
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


# ----------------------------------------------------------------------------------------------------------------
# Fixed 2-D sin-cos position table.
# Position n = r * gw + c (row-major over the patch grid). The official code builds its grid with
# np.meshgrid(grid_w, grid_h), so its "emb_h" (the first half of the channels) is driven by the column index c
# and the second half by the row index r. Each half is [sin(pos * w_k), cos(pos * w_k)], w_k = 10000^(-k / (D/4)).
def sincos_pos_embed(dim, grid_hw, cls_token=True):
    gh, gw = _hw(grid_hw)
    if dim % 4:
        raise ValueError(f"sin-cos position embedding needs embed_dim % 4 == 0, got {dim}")
    quarter = dim // 4
    freq = 1.0 / 10000.0 ** (np.arange(quarter, dtype=np.float64) / quarter)       # (D/4,)
    rows, cols = np.divmod(np.arange(gh * gw), gw)                                 # (L,), (L,)
    # The official grid is float32 before the float64 frequencies multiply it; integers are exact either way.
    ang_c = np.outer(cols.astype(np.float64), freq)                                # (L, D/4)
    ang_r = np.outer(rows.astype(np.float64), freq)                                # (L, D/4)
    table = np.concatenate([np.sin(ang_c), np.cos(ang_c), np.sin(ang_r), np.cos(ang_r)], axis=1)  # (L, D)
    if cls_token:
        table = np.concatenate([np.zeros((1, dim)), table], axis=0)               # (1+L, D)
    return table


# ----------------------------------------------------------------------------------------------------------------
# timm (0.3.2) ViT block pieces; dropouts and drop-path are zero in MAE pretraining so they are left out.
class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)   # rows: q (D), k (D), v (D); heads contiguous inside each
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):                                                        # (B, N, D)
        B, N, D = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.num_heads, self.head_dim)           # (B, N, 3, H, hd)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)                                     # each (B, H, N, hd)
        # timm 0.3.2 scales the logits after the product (newer timm scales q first: same up to rounding)
        att = (q @ k.transpose(-2, -1)) * self.scale                             # (B, H, N, N)
        att = att.softmax(dim=-1)
        out = (att @ v).transpose(1, 2).reshape(B, N, D)                         # (B, N, D)
        return self.proj(out)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()              # exact erf form, not the tanh approximation
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return x


class PatchEmbed(nn.Module):
    """Conv2d(k=p, stride=p): a Linear on each patch flattened in (c, i, j) order."""

    def __init__(self, img_size, patch_size, in_chans, embed_dim):
        super().__init__()
        self.img_size = _hw(img_size)
        self.patch_size = patch_size
        if self.img_size[0] % patch_size or self.img_size[1] % patch_size:
            raise ValueError(f"image size {self.img_size} not divisible by patch size {patch_size}")
        self.grid_size = (self.img_size[0] // patch_size, self.img_size[1] // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):                                                        # (B, C, H, W)
        if tuple(x.shape[2:]) != self.img_size:
            raise ValueError(f"input size {tuple(x.shape[2:])} != model size {self.img_size}")
        return self.proj(x).flatten(2).transpose(1, 2)                           # (B, L, D)


# ----------------------------------------------------------------------------------------------------------------
class MaskedAutoencoderViT(nn.Module):
    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=1024, depth=24, num_heads=16,
                 decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4.0, norm_pix_loss=False):
        super().__init__()
        self.config = dict(img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim,
                           depth=depth, num_heads=num_heads, decoder_embed_dim=decoder_embed_dim,
                           decoder_depth=decoder_depth, decoder_num_heads=decoder_num_heads,
                           mlp_ratio=float(mlp_ratio), norm_pix_loss=bool(norm_pix_loss))
        self.in_chans = in_chans
        self.norm_pix_loss = norm_pix_loss
        # Modules are created in the official order so that the same seed draws the same default inits.
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        L = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, L + 1, embed_dim), requires_grad=False)
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=LN_EPS)

        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, L + 1, decoder_embed_dim), requires_grad=False)
        self.decoder_blocks = nn.ModuleList([Block(decoder_embed_dim, decoder_num_heads, mlp_ratio)
                                             for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(decoder_embed_dim, eps=LN_EPS)
        self.decoder_pred = nn.Linear(decoder_embed_dim, patch_size * patch_size * in_chans, bias=True)
        self.ids_restore = None   # of the last forward, (B, L) int64
        self.initialize_weights()

    def initialize_weights(self):
        grid = self.patch_embed.grid_size
        self.pos_embed.data.copy_(torch.from_numpy(sincos_pos_embed(self.pos_embed.shape[-1], grid)).unsqueeze(0))
        self.decoder_pos_embed.data.copy_(
            torch.from_numpy(sincos_pos_embed(self.decoder_pos_embed.shape[-1], grid)).unsqueeze(0))
        w = self.patch_embed.proj.weight.data                                    # (D, C, p, p)
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))                         # fans of the (D, C*p*p) view
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        for m in self.modules():                                                 # patch-embed bias: Conv2d default
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # (B, C, H, W) -> (B, L, p*p*C), patch content in (i, j, c) order
    def patchify(self, imgs):
        p = self.patch_embed.patch_size
        B, C, H, W = imgs.shape
        h, w = H // p, W // p
        x = imgs.reshape(B, C, h, p, w, p).permute(0, 2, 4, 3, 5, 1)            # (B, h, w, i, j, c)
        return x.reshape(B, h * w, p * p * C)

    # (B, L, p*p*C) -> (B, C, H, W)
    def unpatchify(self, x):
        p = self.patch_embed.patch_size
        h, w = self.patch_embed.grid_size
        B, C = x.shape[0], self.in_chans
        x = x.reshape(B, h, w, p, p, C).permute(0, 5, 1, 3, 2, 4)               # (B, c, h, i, w, j)
        return x.reshape(B, C, h * p, w * p)

    @staticmethod
    def random_masking(x, mask_ratio, noise):
        """x (B, L, D), noise (B, L) -> kept tokens (B, len_keep, D), mask (B, L) 1=removed, ids_restore (B, L)."""
        B, L, D = x.shape
        len_keep = int(L * (1 - mask_ratio))
        ids_shuffle = torch.argsort(noise, dim=1)            # ascending: the smallest noise values are kept
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :len_keep]
        x_kept = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(B, len_keep, D))
        mask = torch.ones(B, L, dtype=x.dtype, device=x.device)
        mask[:, :len_keep] = 0
        mask = torch.gather(mask, 1, ids_restore)            # back to original patch order
        return x_kept, mask, ids_restore

    def _encode(self, x):
        """Patch tokens with positions (B, K, D) -> the encoder's normed output (B, 1+K, D), cls token first."""
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)                                           # (B, 1+K, D)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward_encoder(self, imgs, mask_ratio, noise):
        x = self.patch_embed(imgs) + self.pos_embed[:, 1:, :]                    # (B, L, D)
        x, mask, ids_restore = self.random_masking(x, mask_ratio, noise)         # (B, K, D)
        return self._encode(x), mask, ids_restore

    def forward_features(self, imgs):
        """The encoder on all tokens, no masking (as `mae embed` takes features): (B, 1+L, D), cls token first."""
        return self._encode(self.patch_embed(imgs) + self.pos_embed[:, 1:, :])

    def forward_decoder(self, x, ids_restore):
        x = self.decoder_embed(x)                                                # (B, 1+K, Dd)
        B, N1, Dd = x.shape
        L = ids_restore.shape[1]
        fill = self.mask_token.expand(B, L + 1 - N1, Dd)
        x_ = torch.cat([x[:, 1:, :], fill], dim=1)                               # (B, L, Dd), shuffled order
        x_ = torch.gather(x_, 1, ids_restore.unsqueeze(-1).expand(B, L, Dd))     # original order
        x = torch.cat([x[:, :1, :], x_], dim=1) + self.decoder_pos_embed         # (B, 1+L, Dd)
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_pred(self.decoder_norm(x))                              # (B, 1+L, p*p*C)
        return x[:, 1:, :]

    def forward_loss(self, imgs, pred, mask):
        target = self.patchify(imgs)                                             # (B, L, p*p*C)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, unbiased=True, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        per_patch = ((pred - target) ** 2).mean(dim=-1)                          # (B, L)
        return (per_patch * mask).sum() / mask.sum()

    def forward(self, imgs, mask_ratio=0.75, noise=None):
        if noise is None:
            noise = torch.rand(imgs.shape[0], self.patch_embed.num_patches, device=imgs.device)
        latent, mask, ids_restore = self.forward_encoder(imgs, mask_ratio, noise)
        pred = self.forward_decoder(latent, ids_restore)
        loss = self.forward_loss(imgs, pred, mask)
        self.ids_restore = ids_restore
        return loss, pred, mask


# ----------------------------------------------------------------------------------------------------------------
class VisionTransformer(nn.Module):
    """models_vit.VisionTransformer (timm 0.3.2's VisionTransformer + global_pool), the fine-tuned classifier.

    State-dict names as there: cls_token, pos_embed (learned), patch_embed.proj.*, blocks.N.*, norm.* (cls token)
    or fc_norm.* (global pool: models_vit deletes norm), head.*. Dropout and drop path are off (evaluation).
    """

    def __init__(self, img_size=224, patch_size=16, in_chans=3, num_classes=1000, embed_dim=768, depth=12,
                 num_heads=12, mlp_ratio=4.0, qkv_bias=True, global_pool=False):
        super().__init__()
        if not qkv_bias:
            raise ValueError("MAE's ViT has a qkv bias")
        self.global_pool = global_pool
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, embed_dim))
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth)])
        if global_pool:
            self.fc_norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        else:
            self.norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, x):                                                        # (B, C, H, W)
        x = self.patch_embed(x)                                                  # (B, L, D)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        if self.global_pool:
            outcome = self.fc_norm(x[:, 1:, :].mean(dim=1))
        else:
            outcome = self.norm(x)[:, 0]
        return self.head(outcome)                                                # (B, num_classes)


def build(name_or_config, **overrides):
    cfg = dict(PRESETS[name_or_config]) if isinstance(name_or_config, str) else dict(name_or_config)
    cfg.update(overrides)
    return MaskedAutoencoderViT(**cfg)


def config_dict(model):
    return {k: model.config[k] for k in CONFIG_KEYS}


def param_groups(model, wd):
    """timm add_weight_decay: no decay for 1-D tensors and '.bias'; frozen tensors (pos embeds) left out.
    cls_token / mask_token are (1, 1, D), so they ARE decayed, as in the official recipe."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim == 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": wd}]


def make_optimizer(model, lr, wd=0.05):
    return torch.optim.AdamW(param_groups(model, wd), lr=lr, betas=(0.9, 0.95))


# ----------------------------------------------------------------------------------------------------------------
def _official_sincos(embed_dim, grid_size):
    """Direct numpy transcription of the official get_2d_sincos_pos_embed(..., cls_token=True)."""
    def one_d(dim, pos):
        omega = np.arange(dim // 2, dtype=np.float64)
        omega /= dim / 2.0
        omega = 1.0 / 10000 ** omega
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.stack(np.meshgrid(grid_w, grid_h), axis=0).reshape([2, 1, grid_size, grid_size])
    emb = np.concatenate([one_d(embed_dim // 2, grid[0]), one_d(embed_dim // 2, grid[1])], axis=1)
    return np.concatenate([np.zeros([1, embed_dim]), emb], axis=0)


def selfcheck():
    fails = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            fails.append(what)

    # 1. sin-cos table vs the official formula, and what the model stores
    for dim, g in [(32, 7), (24, 5), (768, 14), (512, 14), (1280, 16), (16, 1)]:
        d = np.abs(sincos_pos_embed(dim, g) - _official_sincos(dim, g)).max()
        check(d < 1e-12, f"sincos D={dim} grid={g}: max diff {d:.2e}")
    torch.manual_seed(0)
    m = build("mae_vit_tiny_patch16")
    d = np.abs(m.pos_embed[0].double().numpy() - _official_sincos(192, 14)).max()
    check(d < 1e-7 and not m.pos_embed.requires_grad, f"model pos_embed == official (f32), frozen: {d:.1e}")
    d = np.abs(m.decoder_pos_embed[0].double().numpy() - _official_sincos(512, 14)).max()
    check(d < 1e-7 and not m.decoder_pos_embed.requires_grad, f"model decoder_pos_embed == official: {d:.1e}")

    # 2. init statistics (tiny preset: big enough for stable estimates)
    for name, mod in m.named_modules():
        if isinstance(mod, nn.Linear):
            fo, fi = mod.weight.shape
            bound = math.sqrt(6.0 / (fi + fo))
            w = mod.weight.detach()
            ok = w.abs().max() <= bound and abs(w.std().item() / (bound / math.sqrt(3)) - 1) < 0.05 \
                and mod.bias.abs().max() == 0
            if not ok or name in ("blocks.0.attn.qkv", "decoder_pred"):
                check(ok, f"xavier {name} {tuple(w.shape)} bound {bound:.4f} max {w.abs().max():.4f} "
                          f"std {w.std():.4f} (expect {bound / math.sqrt(3):.4f}), zero bias")
        elif isinstance(mod, nn.LayerNorm):
            if not (torch.all(mod.weight == 1) and torch.all(mod.bias == 0) and mod.eps == LN_EPS):
                check(False, f"LayerNorm {name} 1/0 eps 1e-6")
    pw = m.patch_embed.proj.weight.detach()
    D, fan_in = pw.shape[0], pw[0].numel()
    bound = math.sqrt(6.0 / (fan_in + D))
    check(pw.abs().max() <= bound and abs(pw.std().item() / (bound / math.sqrt(3)) - 1) < 0.05,
          f"patch_embed xavier on (D, C*p*p) view: bound {bound:.4f} max {pw.abs().max():.4f} std {pw.std():.4f}")
    pb = m.patch_embed.proj.bias.detach()
    check(pb.abs().max() <= 1 / math.sqrt(fan_in) and pb.abs().max() > 0.5 / math.sqrt(fan_in),
          f"patch_embed bias ~ U(+-1/sqrt({fan_in})): max {pb.abs().max():.4f}")
    toks = torch.cat([m.cls_token.flatten(), m.mask_token.flatten()]).detach()
    check(abs(toks.std().item() - 0.02) < 0.003 and abs(toks.mean().item()) < 0.003,
          f"cls/mask tokens N(0, 0.02): std {toks.std():.4f} mean {toks.mean():.5f}")
    decayed = param_groups(m, 0.05)[1]["params"]
    check(any(p is m.cls_token for p in decayed) and any(p is m.mask_token for p in decayed)
          and not any(p is m.pos_embed for g in param_groups(m, 0.05) for p in g["params"]),
          "param groups: cls/mask tokens decayed, pos embeds skipped")

    # 3. patchify order (i, j, c), round trip, and the (c, i, j) order of the patch embed
    torch.manual_seed(1)
    m = MaskedAutoencoderViT(img_size=12, patch_size=3, in_chans=2, embed_dim=16, depth=1, num_heads=2,
                             decoder_embed_dim=8, decoder_depth=1, decoder_num_heads=2)
    imgs = torch.randn(2, 2, 12, 12)
    pt = m.patchify(imgs)
    b, r, c, i, j, ch = 1, 2, 3, 1, 2, 1
    check(pt[b, r * 4 + c, (i * 3 + j) * 2 + ch] == imgs[b, ch, r * 3 + i, c * 3 + j], "patchify (i, j, c) order")
    check(torch.equal(m.unpatchify(pt), imgs), "unpatchify(patchify(x)) == x")
    flat = imgs.reshape(2, 2, 4, 3, 4, 3).permute(0, 2, 4, 1, 3, 5).reshape(2, 16, 18)  # (c, i, j) per patch
    lin = flat @ m.patch_embed.proj.weight.reshape(16, -1).t() + m.patch_embed.proj.bias
    check(torch.allclose(lin, m.patch_embed(imgs), atol=1e-5), "patch embed == Linear on (c, i, j) patches")

    # 4. masking, forward / backward
    noise = torch.rand(2, 16)
    for mr in (0.75, 0.5, 0.0):
        loss, pred, mask = m(imgs, mr, noise)
        keep = int(16 * (1 - mr))
        ids = m.ids_restore
        order = torch.argsort(noise, dim=1)
        ok = bool(torch.all(mask.sum(1) == 16 - keep))
        ok &= torch.equal(torch.gather(order, 1, ids), torch.arange(16).expand(2, 16))
        if keep:
            kth = torch.sort(noise, 1).values[:, keep - 1:keep]                  # largest kept noise value
            ok &= bool(torch.all((mask == 0) == (noise <= kth)))
        check(bool(ok), f"masking mr={mr}: {keep} kept, smallest noise kept, ids_restore inverts argsort")
    m.norm_pix_loss = True
    loss, pred, mask = m(imgs, 0.75, noise)
    loss.backward()
    trainable = [n for n, p in m.named_parameters() if p.requires_grad]
    check(torch.isfinite(loss) and pred.shape == (2, 16, 18) and mask.shape == (2, 16)
          and all(p.grad is not None and torch.isfinite(p.grad).all() for n, p in m.named_parameters() if p.requires_grad)
          and m.pos_embed.grad is None and m.decoder_pos_embed.grad is None,
          f"forward/backward norm_pix: loss {loss.item():.4f}, {len(trainable)} grads, none for pos embeds")
    # norm-pix target by hand (unbiased variance)
    t = m.patchify(imgs).double()
    dev = t - t.mean(-1, keepdim=True)
    tn = dev / torch.sqrt((dev ** 2).sum(-1, keepdim=True) / (t.shape[-1] - 1) + 1e-6)
    ref = ((((pred.double() - tn) ** 2).mean(-1) * mask.double()).sum() / mask.sum()).item()
    check(abs(ref - loss.item()) < 1e-5 * abs(ref), f"norm_pix loss by hand (N-1 variance): {ref:.6f}")

    names = set(build("mae_vit_fmnist").state_dict().keys())
    must = {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "blocks.11.attn.qkv.weight",
            "blocks.0.mlp.fc2.bias", "norm.weight", "decoder_embed.weight", "mask_token", "decoder_pos_embed",
            "decoder_blocks.3.norm2.bias", "decoder_norm.bias", "decoder_pred.weight"}
    check(must <= names and len(names) == 4 + 2 + 12 * 12 + 2 + 2 + 4 * 12 + 2 + 2, f"state_dict names ({len(names)})")

    print(f"selfcheck: {len(fails)} failure(s)")
    return 1 if fails else 0


if __name__ == "__main__":
    if "--selfcheck" in sys.argv:
        sys.exit(selfcheck())
    print(__doc__)
