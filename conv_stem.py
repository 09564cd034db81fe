"""
A convolutional stem for the tiny vision encoder: SigLIP's patch embedding (one linear projection
of each p×p patch, a stride-p convolution) replaced by log2(p) stride-2 3×3 convolutions with GELU
between them, which give the same (B, Dv, S/p, S/p) grid of patch tokens (Xiao et al. 2021, "Early
convolutions help transformers see better").

Why. The depth of an object is read from its size in pixels and where its base meets the floor:
edges and their positions, at a finer scale than a 16 px patch. A linear patch projection must
learn such detectors from scratch as one 768-input linear map per token; a conv stem builds them
from 3×3 edges up, and a plain 0.45 M CNN with the same four strided convolutions learns metric
depth of this world in a few minutes on one CPU thread (research/cnn_reference.py).

Worked number: 128 px, p = 16: 3 -> 32 -> 64 -> 96 -> Dv channels at 64, 32, 16, 8 px, an 8×8
grid; p = 8: three convolutions (3 -> 32 -> 64 -> Dv).
"""
import math

import torch.nn as nn

WIDTHS = (32, 64, 96)   # channels of the stem's first convolutions; the last gives the encoder width


class ConvStem(nn.Module):
    """(B, 3, S, S) -> (B, width, S/p, S/p) by log2(p) stride-2 3×3 convolutions (GELU between)."""

    def __init__(self, width: int, patch_size: int, in_channels: int = 3):
        super().__init__()
        n = int(round(math.log2(patch_size)))
        if n < 1 or 2 ** n != patch_size:
            raise ValueError(f'a conv stem needs a patch size that is a power of 2 >= 2, got {patch_size}')
        chans = [in_channels, *WIDTHS[:n - 1], *[WIDTHS[-1]] * max(0, n - 1 - len(WIDTHS)), width]
        layers = []
        for i in range(n):
            layers += [nn.Conv2d(chans[i], chans[i + 1], 3, stride=2, padding=1)] + ([nn.GELU()] if i < n - 1 else [])
        self.layers = nn.Sequential(*layers)

    @property
    def weight(self):
        """SiglipVisionEmbeddings reads patch_embedding.weight.dtype to cast the pixels."""
        return self.layers[-1].weight

    def forward(self, x):
        return self.layers(x)


def add_conv_stem(vision):
    """Swap a SiglipVisionModel's patch embedding for a ConvStem of the same output grid and width."""
    emb = getattr(vision, 'vision_model', vision).embeddings   # transformers 4: .vision_model; 5: itself
    emb.patch_embedding = ConvStem(emb.embed_dim, emb.patch_size, vision.config.num_channels).to(
        emb.position_embedding.weight)
    return vision
