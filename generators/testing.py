"""Offline test helpers: a tiny, randomly initialised Stable Diffusion pipeline.

Nothing here downloads anything. The Django integration tests, the generator tests
and the bench all need *some* real ``DiffusionPipeline`` on disk to exercise the
"diffusers" generator end to end, and there is no network, so we build one from
tiny configs, including a CLIP byte-level BPE tokenizer written from scratch
(vocab.json + merges.txt), the same way diffusers' own test-suite uses the
hf-internal-testing tiny models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

# Special tokens CLIP's tokenizer expects.
_BOS = "<|startoftext|>"
_EOS = "<|endoftext|>"

# A few merges of common English fragments so prompts do not tokenise purely into
# single characters; the exact set does not matter for a random model.
_MERGES = [
    "t h",
    "th e</w>",
    "a n",
    "o n",
    "i n",
    "e r",
    "r e",
    "c i",
    "r c",
    "l e",
    "l e</w>",
    "a r",
]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP reversible byte -> printable unicode map (same algorithm as CLIP)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


def write_tiny_clip_tokenizer_files(directory: str | Path) -> tuple[Path, Path]:
    """Write a minimal CLIP ``vocab.json`` and ``merges.txt`` into ``directory``.

    The vocabulary contains every byte symbol (with and without the ``</w>``
    end-of-word marker), the merge results and the two special tokens, so any
    input string can be tokenised without unknown tokens.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    symbols = list(_bytes_to_unicode().values())
    tokens: list[str] = symbols + [s + "</w>" for s in symbols]
    for merge in _MERGES:
        merged = merge.replace(" ", "")
        if merged not in tokens:
            tokens.append(merged)
    tokens += [_BOS, _EOS]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    vocab_path = directory / "vocab.json"
    merges_path = directory / "merges.txt"
    vocab_path.write_text(json.dumps(vocab), encoding="utf-8")
    merges_path.write_text("#version: 0.2\n" + "\n".join(_MERGES) + "\n", encoding="utf-8")
    return vocab_path, merges_path


def build_tiny_clip_tokenizer(directory: str | Path) -> CLIPTokenizer:
    """Build a tiny ``CLIPTokenizer`` from files written into ``directory``."""
    from transformers import CLIPTokenizer

    vocab_path, _merges_path = write_tiny_clip_tokenizer_files(directory)
    # ``from_pretrained`` on a directory works on both transformers 4.x (slow
    # tokenizer reading files) and 5.x (tokenizers backend), unlike the constructor
    # whose signature changed between them.
    return CLIPTokenizer.from_pretrained(
        str(vocab_path.parent), local_files_only=True, model_max_length=77
    )


def _build_tiny_pipeline(path: str | Path, *, seed: int, pipeline_class: type, unet_class: type,
                         down_block_types: tuple[str, ...], up_block_types: tuple[str, ...],
                         **pipeline_kwargs: Any) -> Path:
    """Build a tiny random diffusers pipeline and ``save_pretrained`` it to ``path``.

    ``pipeline_class`` and ``unet_class`` are the diffusers classes; the UNet's block types
    say whether it is 2D (images) or 3D (video). The VAE, the CLIP text encoder and
    tokenizer and the DDIM scheduler are the same for both. The weights are drawn after
    ``torch.manual_seed`` in a fixed order, so the result (and every image it renders) is
    reproducible.
    """
    import tempfile

    import torch
    from diffusers import AutoencoderKL, DDIMScheduler
    from transformers import CLIPTextConfig, CLIPTextModel

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    unet = unet_class(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=down_block_types,
        up_block_types=up_block_types,
        cross_attention_dim=16,
        attention_head_dim=4,
        norm_num_groups=4,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=4,
        sample_size=16,
    )
    with tempfile.TemporaryDirectory() as tok_dir:
        tokenizer = build_tiny_clip_tokenizer(tok_dir)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=tokenizer.convert_tokens_to_ids(_BOS),
        eos_token_id=tokenizer.convert_tokens_to_ids(_EOS),
        pad_token_id=tokenizer.convert_tokens_to_ids(_EOS),
        hidden_size=16, intermediate_size=32, layer_norm_eps=1e-05, num_attention_heads=2,
        num_hidden_layers=2, vocab_size=len(tokenizer), max_position_embeddings=77,
    ))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = pipeline_class(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                          scheduler=scheduler, **pipeline_kwargs)
    pipe.save_pretrained(path)
    return path


def build_tiny_sd_pipeline(path: str | Path, *, seed: int = 0) -> Path:
    """Create a tiny random ``StableDiffusionPipeline`` and ``save_pretrained`` it to ``path``.

    The result loads with ``DiffusionPipeline.from_pretrained(path)`` fully offline
    and renders a 64x64 image in a fraction of a second on CPU with 2 steps. Images
    are noise-like (weights are random) but deterministic, which is all tests need.
    Returns ``path`` as a ``Path``.
    """
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    return _build_tiny_pipeline(
        path, seed=seed, pipeline_class=StableDiffusionPipeline,
        unet_class=UNet2DConditionModel,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def build_tiny_t2v_pipeline(path: str | Path, *, seed: int = 0) -> Path:
    """Create a tiny random ``TextToVideoSDPipeline`` (3D UNet) and ``save_pretrained`` it.

    Like :func:`build_tiny_sd_pipeline`: loads offline with ``DiffusionPipeline``, renders a
    few 32x32 frames in well under a second on CPU; frames are noise-like but deterministic.
    """
    from diffusers import TextToVideoSDPipeline, UNet3DConditionModel

    return _build_tiny_pipeline(
        path, seed=seed, pipeline_class=TextToVideoSDPipeline,
        unet_class=UNet3DConditionModel,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"))
