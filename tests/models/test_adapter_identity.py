"""An adapter's identity is its settings, not its config file's bytes (inward.models.paths)."""

from __future__ import annotations

import json

from inward.models.paths import adapter_config_sha256


def _write(path, **changes):
    config = {
        "r": 16,
        "lora_alpha": 32,
        "peft_type": "LORA",
        "base_model_name_or_path": "/root/.cache/inward/m",
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "lora_dropout": 0.0,
    }
    config.update(changes)
    path.write_text(json.dumps(config, indent=2))
    return path


def test_module_order_and_base_path_do_not_change_it(tmp_path):
    a = adapter_config_sha256(_write(tmp_path / "a.json"))
    # peft writes target_modules from a set: another process, another order; another cache dir
    b = adapter_config_sha256(
        _write(
            tmp_path / "b.json",
            target_modules=["o_proj", "v_proj", "q_proj", "k_proj"],
            base_model_name_or_path="/home/me/elsewhere/m",
        )
    )
    assert a == b


def test_a_setting_that_changes_the_weights_changes_it(tmp_path):
    a = adapter_config_sha256(_write(tmp_path / "a.json"))
    assert adapter_config_sha256(_write(tmp_path / "r.json", r=8)) != a
    assert adapter_config_sha256(_write(tmp_path / "t.json", target_modules=["q_proj", "v_proj"])) != a
