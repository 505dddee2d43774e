"""The ComParE 2023 YAMLs in hparams/: encoder swaps, widths and sizes.

A YAML belongs to the ComParE 2023 recipe when its ``prepare_data`` is
``emoshare_sb.data.compare23.prepare_compare23``; the others (``msp_*``, ...)
belong to other recipes and are left to their tests. Every YAML, of every
recipe, runs with its script as its row of ``tests/recipes/*.csv`` says
(``tests/test_recipe_rows.py``). Here, in-process: the encoder swaps the
YAML headers document (same YAML, another encoder family: its width comes
from the encoder, ``encoder_dim: auto``) build the recipe's Brain, run one
debug training step and an evaluation with the averaged checkpoint.

The parameter counts of the paper-sized downstream models (``model``:
aggregator, head and layer mix) are checked against the values in the README
table, and against the paper where it states one (TC-GRU: "1.6M", Mitra et
al. App. A.8). ``pytest -s`` prints the table.
"""

import importlib.util

import pytest
import ruamel.yaml
import torch

from emoshare_sb.lobes.fusion import WeightedLayerSum
from emoshare_sb.synthetic.compare23 import make_compare23_corpus
from emoshare_sb.synthetic.encoders import make_tiny_ssl_model
from emoshare_sb.training.hparams import load_hparams
from tests.conftest import REPO

spec = importlib.util.spec_from_file_location(
    "compare23_train_for_hparams", REPO / "recipes/ComParE23/train.py"
)
recipe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipe)

COMPARE23_PREP = "!name:emoshare_sb.data.compare23.prepare_compare23"

# Family of a default hub id, by the first hint its name contains.
FAMILY_HINTS = (
    ("whisper", "whisper"),
    ("wavlm", "wavlm"),
    ("hubert", "hubert"),
    ("wav2vec2", "wav2vec2"),
    ("xls-r", "wav2vec2"),
)
# Distinct widths, so a width taken from the wrong encoder fails.
TINY_WIDTHS = {"hubert": 32, "wav2vec2": 16, "wavlm": 24, "whisper": 40}
# The width of the papers' encoders (HuBERT/wav2vec2/WavLM Large, Whisper medium).
PAPER_ENCODER_WIDTH = 1024

# Small values for the YAMLs' width keys (only those a YAML has are used).
SMALL_WIDTHS = {
    "head_hidden_size": 8,
    "cnn_channels": [12, 8],
    "lstm_size": 8,
    "tcgru_size": 8,
    "ecapa_channels": [16, 16, 16, 16, 48],
    "ecapa_embedding_size": 8,
}

# Downstream parameters (``model``, without a layer mix's per-layer weights)
# at the papers' sizes, as in the README table.
PAPER_SIZE_PARAMETERS = {
    "fbank_ecapa.yaml": 6_195_785,
    "hubert_attn.yaml": 265_737,
    "hubert_attn_finetune.yaml": 265_737,
    "hubert_cnnlstm.yaml": 7_187_657,
    "hubert_cnnlstm_attn.yaml": 7_712_457,
    # Nine single-output networks (7,788,751 each: the sequence layer norms
    # of the released code included) and (7,162,001 each) of architecture 1.
    "hubert_cnnlstm_attn_paper.yaml": 70_098_759,
    "hubert_cnnlstm_paper.yaml": 64_458_009,
    "hubert_ecapa.yaml": 8_612_425,
    "hubert_layermix_attn.yaml": 265_737,  # + one weight per hidden state (25)
    "hubert_wav2vec2_early_ecapa.yaml": 11_233_865,
    "hubert_wav2vec2_late_ecapa.yaml": 17_224_841,
    "wavlm_tcgru.yaml": 1_644_297,
    "whisper_tcgru.yaml": 1_644_297,
}
# What the papers state: Mitra et al. (App. A.8) "The TC-GRU models had 1.6M
# parameters" (on 1024-dim WavLM/HuBERT/Whisper-medium features).
PAPER_STATED_PARAMETERS = {
    "wavlm_tcgru.yaml": 1.6e6,
    "whisper_tcgru.yaml": 1.6e6,
}


def _top_level(path):
    with open(path, encoding="utf-8") as handle:
        return ruamel.yaml.YAML(typ="rt").load(handle)


def _tag(node):
    return getattr(getattr(node, "tag", None), "value", None)


def compare23_yamls():
    """The hparams files whose data preparation is ComParE 2023's."""
    return sorted(
        path.name
        for path in (REPO / "hparams").glob("*.yaml")
        if _tag(_top_level(path).get("prepare_data")) == COMPARE23_PREP
        # The openSMILE baselines have no Brain (tests/test_opensmile.py).
        and "modules" in _top_level(path)
    )


def family_of(hub_id):
    for hint, family in FAMILY_HINTS:
        if hint in hub_id.lower():
            return family
    raise ValueError(
        f"no tiny model family for '{hub_id}': add a hint to FAMILY_HINTS"
    )


def source_keys(defaults):
    """``{source key: family}`` for the YAML's encoders (``ssl_source``, ``*_source``)."""
    return {
        key: family_of(str(value))
        for key, value in defaults.items()
        if key.endswith("_source") and isinstance(value, str)
    }


def width_key(source_key):
    return (
        "encoder_dim"
        if source_key == "ssl_source"
        else source_key[: -len("source")] + "dim"
    )


@pytest.fixture(scope="module")
def short_compare23(tmp_path_factory):
    """A ComParE 2023 layout corpus of 8/6/2 clips of 1.2 to 2 s (one batch each)."""
    root = tmp_path_factory.mktemp("short_compare23") / "corpus"
    return make_compare23_corpus(str(root), 8, 6, 2, max_duration=2.0, seed=5)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_models")
    return {
        family: make_tiny_ssl_model(
            str(root / family), family, hidden_size=width
        )
        for family, width in TINY_WIDTHS.items()
    }


def tiny_overrides(name, tiny_models, tmp_path, family=None, paper_size=False):
    """Overrides that swap a YAML's encoders for tiny ones (and shrink its widths).

    ``family`` replaces the family of ``ssl_source`` (the documented swaps,
    e.g. wav2vec2 in the HuBERT CNN-LSTM); the encoder widths follow the
    tiny encoders (``auto``). ``paper_size`` keeps every width of the YAML
    and sets each encoder width to the paper's (``PAPER_ENCODER_WIDTH``):
    only the encoders are tiny.
    """
    defaults = _top_level(REPO / "hparams" / name)
    overrides = {"data_folder": "unused", "output_folder": str(tmp_path)}
    if "pretrained_path" in defaults:
        overrides["pretrained_path"] = str(tmp_path / "pretrained")
    for key, default_family in source_keys(defaults).items():
        chosen = family if (family and key == "ssl_source") else default_family
        overrides[key] = tiny_models[chosen]
        if paper_size and not _tag(defaults.get(width_key(key))):
            overrides[width_key(key)] = PAPER_ENCODER_WIDTH
    if isinstance(defaults.get("ssl_layer"), int):
        overrides["ssl_layer"] = 1  # tiny encoders have 3 hidden states
    if not paper_size:
        overrides.update(
            {k: v for k, v in SMALL_WIDTHS.items() if k in defaults}
        )
    return overrides


def test_the_compare23_yamls_are_found_and_others_are_not():
    names = compare23_yamls()
    assert "hubert_attn.yaml" in names and "whisper_tcgru.yaml" in names
    assert not any(name.startswith(("msp_", "iemocap_")) for name in names)
    missing = set(names) - set(PAPER_SIZE_PARAMETERS)
    assert not missing, (
        f"add the paper-size counts of {missing} here and to the README"
    )


RUN_CASES = [
    # Swaps the headers document: same YAML, another encoder family.
    ("hubert_cnnlstm_attn.yaml", "wav2vec2"),
    ("wavlm_tcgru.yaml", "hubert"),
]


def _changed(before, module):
    after = module.state_dict()
    return any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize(
    "name, family",
    RUN_CASES,
    ids=[f"{n[:-5]}-{f}" for n, f in RUN_CASES],
)
def test_yaml_trains_one_debug_step_and_evaluates(
    name, family, short_compare23, tiny_models, tmp_path
):
    overrides = tiny_overrides(name, tiny_models, tmp_path, family)
    overrides.update(
        {"data_folder": short_compare23, "number_of_epochs": 1, "batch_size": 4}
    )
    if "encoder_freeze_steps" in _top_level(REPO / "hparams" / name):
        overrides["encoder_freeze_steps"] = (
            0  # the encoder's optimizer steps too
        )
    hparams = load_hparams(str(REPO / "hparams" / name), overrides)
    recipe.check_encoder_width(hparams["encoder"], hparams["encoder_dim"])
    assert hparams["encoder_dim"] == TINY_WIDTHS[family]  # auto
    hparams["prepare_data"]()
    datasets = recipe.dataio_prep(hparams)
    brain = recipe.EmotionShareBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts={
            "device": "cpu",
            "debug": True,
            "debug_batches": 1,
            "debug_epochs": 1,
            "noprogressbar": True,
        },
        checkpointer=hparams["checkpointer"],
        encoder_opt_class=hparams.get("encoder_opt_class"),
        encoder_freeze_steps=hparams.get("encoder_freeze_steps", 0),
        lr_schedulers=hparams.get("lr_schedulers"),
    )
    parts = list(hparams["model"])
    before = [
        {k: v.clone() for k, v in part.state_dict().items()} for part in parts
    ]
    downstream = {
        id(p) for p in hparams["model"].parameters()
    }  # e.g. a layer mix
    encoder_before = [
        (p, p.detach().clone())
        for p in hparams["encoder"].parameters()
        if id(p) not in downstream
    ]

    brain.fit(
        hparams["epoch_counter"],
        datasets["train"],
        datasets["devel"],
        train_loader_kwargs={"batch_size": 4},
        valid_loader_kwargs={"batch_size": 6},
    )
    # Every trainable downstream part learned (the layer mix too, although the
    # frozen encoder runs without autograd).
    for part, state in zip(parts, before, strict=True):
        assert _changed(state, part), f"{type(part).__name__} did not change"
    fine_tuned = any(p.requires_grad for p, _ in encoder_before)
    assert fine_tuned == ("encoder_opt_class" in hparams)
    encoder_changed = any(not torch.equal(p, old) for p, old in encoder_before)
    assert encoder_changed == fine_tuned

    brain.evaluate(
        datasets["devel"],
        max_key="spearman",
        test_loader_kwargs={"batch_size": 6},
    )
    predictions = brain.test_outputs["predictions"]
    assert predictions.shape == (6, 9)
    assert torch.isfinite(torch.as_tensor(predictions)).all()
    assert brain.test_outputs["scores"] is not None
    assert len(brain.evaluated_checkpoints) == 1


def downstream_parameters(model):
    """Parameters of ``model`` without per-layer mix weights (they follow the encoder)."""
    mix = {
        id(p)
        for m in model.modules()
        if isinstance(m, WeightedLayerSum)
        for p in m.parameters()
    }
    return sum(p.numel() for p in model.parameters() if id(p) not in mix)


def test_paper_sized_downstream_parameter_counts(tiny_models, tmp_path):
    """Paper-size counts; and drop_last wherever BatchNorm would meet a one-clip batch."""
    rows = []
    for name in sorted(PAPER_SIZE_PARAMETERS):
        overrides = tiny_overrides(
            name, tiny_models, tmp_path / name, paper_size=True
        )
        hparams = load_hparams(str(REPO / "hparams" / name), overrides)
        count = downstream_parameters(hparams["model"])
        if any(
            isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
            for m in hparams["model"].modules()
        ):
            # ComParE's 31,745 training clips leave a last batch of one clip,
            # on which BatchNorm fails in training mode.
            assert hparams["train_dataloader_options"].get("drop_last"), (
                f"{name}: add drop_last: True"
            )
        rows.append(f"| {name} | {count:,} |")
        assert count == PAPER_SIZE_PARAMETERS[name], name
        if name in PAPER_STATED_PARAMETERS:
            stated = PAPER_STATED_PARAMETERS[name]
            assert abs(count - stated) / stated < 0.05, (name, count, stated)
    print("\n| YAML | downstream parameters at paper size |\n|---|---|")
    print("\n".join(rows))


def test_continuous_keys_are_written_as_floats():
    """`--eval_window 1.5` must fit a key the YAML writes as 0: write 0.0."""
    import re

    import ruamel.yaml

    continuous = re.compile(
        r"(window|hop|seconds|^lr$|_lr$|weight_decay|ratio|_weight$)"
    )
    for path in sorted((REPO / "hparams").glob("*.yaml")):
        with open(path) as handle:
            values = ruamel.yaml.YAML(typ="rt").load(handle)
        for key, value in values.items():
            if (
                continuous.search(key)
                and isinstance(value, int)
                and not isinstance(value, bool)
            ):
                raise AssertionError(
                    f"{path.name}: {key}: {value} should be written {value}.0"
                )
