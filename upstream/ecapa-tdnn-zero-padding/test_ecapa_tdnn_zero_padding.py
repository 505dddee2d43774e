"""With ``padding_mode="constant"``, an ECAPA-TDNN embedding does not depend on the batch.

SpeechBrain's ECAPA-TDNN convolves a padded batch as it is: at the end of
a short clip its convolutions see the batch's padding (and, with ``reflect``
padding, the unpadded clip sees a reflection instead). Fails on SpeechBrain
1.1.2 (no ``padding_mode`` argument), passes with patch.diff.
"""

import torch
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

FEATURES = 12
# Frames of each clip in a batch of 16: relative lengths n / 16 are exact
# floats, so no mask rounding is involved.
CLIP_FRAMES = [16, 9, 1, 6, 13]


def small_ecapa(**options):
    """A small ECAPA-TDNN in eval mode with non-trivial BatchNorm statistics."""
    torch.manual_seed(0)
    model = ECAPA_TDNN(
        FEATURES,
        lin_neurons=8,
        channels=[16, 16, 16, 16, 48],
        attention_channels=8,
        se_channels=8,
        **options,
    )
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def test_zero_padding_makes_embeddings_independent_of_the_batch():
    model = small_ecapa(padding_mode="constant")
    generator = torch.Generator().manual_seed(1)
    clips = [torch.randn(n, FEATURES, generator=generator) for n in CLIP_FRAMES]
    total = max(CLIP_FRAMES)
    batch = 100 * torch.randn(len(clips), total, FEATURES, generator=generator)
    for i, clip in enumerate(clips):
        batch[i, : clip.shape[0]] = clip
    lengths = torch.tensor([clip.shape[0] / total for clip in clips])
    with torch.no_grad():
        alone = torch.cat([model(clip.unsqueeze(0)) for clip in clips])
        batched = model(batch, lengths)
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
    # The same parameters as the default model: pretrained weights load.
    assert model.state_dict().keys() == small_ecapa().state_dict().keys()
