import pytest

from seq2seq.config import ConfigError, config_from_dict, config_to_dict, load_config


def test_recipes_load():
    attention = {"demo": "bahdanau", "en-de": "luong", "en-de-context": "none"}
    for name, kind in attention.items():
        assert load_config(f"recipes/{name}.yaml").model.attention == kind


def test_values_parse_by_declared_type(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  lr: 1e-3\n  epochs: 3\n")
    config = load_config(recipe, ["model.attention=luong", "data.train=[a.en, a.de]", "train.clip_norm=1"])
    assert config.train.lr == 1e-3 and isinstance(config.train.lr, float)
    assert isinstance(config.train.clip_norm, float)
    assert config.model.attention == "luong"
    assert config.data.train == ("a.en", "a.de")


def test_all_problems_reported_at_once():
    with pytest.raises(ConfigError) as err:
        load_config("recipes/demo.yaml", ["train.lrr=1", "model.attention=dot", "train.epochs=many", "train.lr=-1", "modle.x=1"])
    problems = err.value.problems
    assert len(problems) == 5
    text = str(err.value)
    assert "unknown key train.lrr; did you mean train.lr?" in text
    assert "unknown key modle; did you mean model?" in text
    assert "model.attention: expected one of 'bahdanau', 'luong', 'none', got 'dot'" in text
    assert "train.epochs: expected an integer, got 'many'" in text
    assert "train.lr: must be > 0.0" in text


def test_bad_override_syntax_and_missing_recipe(tmp_path):
    with pytest.raises(ConfigError, match="must look like key=value"):
        load_config(None, ["train.lr"])
    with pytest.raises(ConfigError, match="cannot read recipe"):
        load_config(tmp_path / "missing.yaml")


def test_round_trip_through_dict():
    config = load_config("recipes/en-de.yaml", ["data.train=[x, y]"])
    assert config_from_dict(config_to_dict(config)) == config


def test_linear_schedule_on_a_stream_needs_a_length(demo_dir):
    from seq2seq.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"train\.max_minutes or train\.max_steps"):
        load_config(None, ["data.streaming=true", "train.scheduler=linear"])
    load_config(None, ["data.streaming=true", "train.scheduler=linear", "train.max_steps=10"])


def test_target_output_vocabulary_needs_the_whole_training_set():
    from seq2seq.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"model\.output_vocab=full or data\.streaming=false"):
        load_config(None, ["data.streaming=true", "model.output_vocab=target"])
    with pytest.raises(ConfigError, match=r"full.*target|target.*full"):
        load_config(None, ["model.output_vocab=seen"])


def test_an_unknown_cell_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"model.cell: expected one of 'lstm', 'gru', got 'transformer'"):
        load_config("recipes/demo.yaml", ["model.cell=transformer"])
    assert load_config("recipes/demo.yaml", ["model.cell=gru"]).model.cell == "gru"


def test_bf16_is_auto_true_or_false():
    assert load_config("recipes/demo.yaml").train.bf16 is False  # the default: the same numbers on every machine
    assert load_config("recipes/en-de.yaml").train.bf16 == "auto"
    assert load_config("recipes/en-de-context.yaml").train.bf16 == "auto"
    assert load_config("recipes/demo.yaml", ["train.bf16=true"]).train.bf16 is True
    assert load_config("recipes/demo.yaml", ["train.bf16=false"]).train.bf16 is False
    for wrong in ("1", "fast", "AUTO"):
        with pytest.raises(ConfigError, match=r"train.bf16: expected one of 'auto' or true or false, got "):
            load_config("recipes/demo.yaml", [f"train.bf16={wrong}"])
    # A model directory's config.json from before auto (true or false) still loads.
    for saved in (True, False, "auto"):
        data = config_to_dict(load_config("recipes/demo.yaml"))
        data["train"]["bf16"] = saved
        assert config_from_dict(data).train.bf16 == saved


def test_joined_pairs_need_the_corpus_in_memory():
    from seq2seq.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"data\.join_pairs=0 or data\.streaming=false"):
        load_config(None, ["data.streaming=true", "model.output_vocab=full", "data.join_pairs=0.1"])
    with pytest.raises(ConfigError, match=r"data\.join_pairs"):
        load_config(None, ["data.join_pairs=1.5"])
    assert load_config(None, ["data.join_pairs=0.1"]).data.join_pairs == 0.1
