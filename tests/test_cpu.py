"""CPU-aware paths: native bfloat16 detection, the bf16 warning, the attention rule."""

import logging

import torch

from emoshare_sb.utils import cpu


def test_bf16_is_not_native_when_torch_dispatches_below_avx512(monkeypatch):
    monkeypatch.setattr(cpu, "_cpu_flags", lambda: {"avx512_bf16": True})
    monkeypatch.setattr(cpu, "cpu_capability", lambda: "AVX2")
    assert not cpu.has_native_bf16()
    monkeypatch.setattr(cpu, "cpu_capability", lambda: "AVX512")
    assert cpu.has_native_bf16()
    monkeypatch.setattr(cpu, "_cpu_flags", lambda: {"avx2": True})
    assert not cpu.has_native_bf16()


def test_forcing_bf16_without_native_support_warns(monkeypatch, caplog):
    monkeypatch.setattr(cpu, "has_native_bf16", lambda: False)
    with caplog.at_level(logging.WARNING):
        assert not cpu.check_autocast_dtype(torch.bfloat16, "cpu")
    assert "without native bfloat16" in caplog.text
    caplog.clear()
    monkeypatch.setattr(cpu, "has_native_bf16", lambda: True)
    assert cpu.check_autocast_dtype(torch.bfloat16, "cpu")
    assert cpu.check_autocast_dtype(torch.float32, "cpu")
    assert "bfloat16" not in caplog.text


def test_attention_rule_per_machine_is_logged(monkeypatch, caplog):
    monkeypatch.setattr(cpu, "_LOGGED", set())
    monkeypatch.setattr(cpu, "cpu_capability", lambda: "AVX2")
    with caplog.at_level(logging.INFO):
        assert cpu.choose_attention("cpu") == "eager"
    assert "Attention kernel: eager" in caplog.text
    monkeypatch.setattr(cpu, "cpu_capability", lambda: "AVX512")
    assert cpu.choose_attention("cpu") == "sdpa"
    assert cpu.choose_attention("cpu", "eager") == "eager"
    assert cpu.choose_attention("cuda:0") == "sdpa"


def test_the_encoder_uses_the_chosen_kernel(tiny_hubert, tmp_path, monkeypatch):
    from emoshare_sb.lobes.ssl import SSLEncoder

    monkeypatch.setattr(cpu, "cpu_capability", lambda: "AVX2")
    encoder = SSLEncoder(tiny_hubert, str(tmp_path))
    encoder(torch.randn(1, 8000))
    assert encoder.model.config._attn_implementation == "eager"
    forced = SSLEncoder(tiny_hubert, str(tmp_path), attention="sdpa")
    forced(torch.randn(1, 8000))
    assert forced.model.config._attn_implementation == "sdpa"
