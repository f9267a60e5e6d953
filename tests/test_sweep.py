"""sweep.py: (k, Q) pairs; a later sweep into the same folder adds its rows and replaces only those it redoes."""
from types import SimpleNamespace

import pytest

from files import UserError
from sweep import markdown, merge, parse_pairs, row


def fake_row(k, variant, bass, codebooks=None):
    r = {"k": k, "variant": variant, "minutes": 1.0, "si_sdr_db": 9.0, "mrstft": 3.0, "codes_used": 1.0,
         "tokens_per_second": 16000 / 2 ** k, "seconds_per_512": 512 * 2 ** k / 16000, "mlm_accuracy": 0.3,
         "unigram_accuracy": 0.1, "neighbour_accuracy": 0.2, "si_sdri_db": {"bass": bass}}
    if codebooks is not None:  # rows of sweeps before residual quantization have no "codebooks"
        r.update(codebooks=codebooks, codes_used_by_level=[1.0] * codebooks, mlm_accuracy_by_level=[0.3] * codebooks,
                 unigram_accuracy_by_level=[0.1] * codebooks, bitrate_kbps=9.0,
                 inpainting={"1": {"bert": 2.0, "silence": 9.0, "crossfade": 3.0, "oracle": 1.0}})
    return r


def test_merge_keeps_other_pairs_and_replaces_redone_ones():
    earlier = [fake_row(4, "cosine", 1.0), fake_row(4, "bert", -2.0), fake_row(6, "cosine", 3.0)]
    later = [fake_row(6, "cosine", 5.0), fake_row(5, "cosine", 4.0)]
    rows = merge(earlier, later)
    assert [(r["k"], r["variant"]) for r in rows] == [(4, "cosine"), (4, "bert"), (5, "cosine"), (6, "cosine")]
    assert rows[-1]["si_sdri_db"]["bass"] == 5.0  # the redone k = 6 row is the new one
    table = markdown(rows).splitlines()
    assert len(table) == 2 + 4 and "+5.00" in table[-1] and "| 6 | 1 | cosine | 250 |" in table[-1]


def test_a_residual_pair_is_its_own_row_beside_one_codebook():
    rows = merge([fake_row(7, "cosine", 1.0)], [fake_row(7, "cosine", 6.0, codebooks=8), fake_row(4, "cosine", 2.0, codebooks=1)])
    assert [(r["k"], r.get("codebooks", 1)) for r in rows] == [(4, 1), (7, 1), (7, 8)]
    table = markdown(rows).splitlines()
    assert len(table) == 2 + 3 and all(len(line.split("|")) == len(table[0].split("|")) for line in table)
    assert "| 7 | 8 | cosine |" in table[-1] and "100% (100 100 100 100 100 100 100 100)" in table[-1]
    assert "2.00 / - / 9.00 / 3.00 / 1.00" in table[-1] and "inpainting 1 s" in table[0]  # no unigram: an older row


def test_pairs_and_ks():
    assert parse_pairs(SimpleNamespace(ks=None, pairs="4x1,7x8")) == [(4, 1), (7, 8)]
    assert parse_pairs(SimpleNamespace(ks="4,6", pairs="7x8")) == [(4, 1), (6, 1)]
    with pytest.raises(UserError, match="4x1,7x8"):
        parse_pairs(SimpleNamespace(ks=None, pairs="7-8"))


def test_row_reads_the_evaluate_json():
    results = {"reconstruction": {"si_sdr_db": 5.0, "mrstft": 3.0, "codes_used_fraction": 0.9, "tokens_per_second": 125.0,
                                  "seconds_per_512_tokens": 4.096, "bitrate_kbps": 9.0, "codes_used_fraction_by_level": [0.9, 1.0],
                                  "si_sdr_db_by_levels": {"1": 2.0, "2": 5.0}},
               "mlm": {"accuracy": 0.2, "unigram_accuracy": 0.1, "neighbour_accuracy": 0.1,
                       "accuracy_by_level": [0.2, 0.1], "unigram_accuracy_by_level": [0.1, 0.05]},
               "separation": {"bass": {"si_sdri_db": 8.0}},
               "inpainting_gaps": {"1": {"mrstft_gap": 2.0, "mrstft_gap_silence": 9.0, "mrstft_gap_crossfade": 3.0,
                                         "mrstft_gap_oracle": 1.0, "mrstft_gap_unigram": 2.5},
                                   "5": {"skipped": "too long"}}}
    r = row(7, 2, "cosine", 3.0, results)
    assert r["codes_used_by_level"] == [0.9, 1.0] and r["si_sdri_db"] == {"bass": 8.0}
    assert r["inpainting"]["1"]["crossfade"] == 3.0 and "skipped" in r["inpainting"]["5"]
    cells = markdown([r]).splitlines()[-1].split(" | ")
    assert cells[-3] == "2.00 / 2.50 / 9.00 / 3.00 / 1.00" and cells[-2] == "-"  # the 5 s gap was too long for the context


def test_a_tokenizer_only_row_has_no_bert_columns():
    results = {"reconstruction": {"si_sdr_db": 5.0, "mrstft": 3.0, "codes_used_fraction": 0.85, "tokens_per_second": 62.5,
                                  "seconds_per_512_tokens": 8.192, "bitrate_kbps": 9.0,
                                  "codes_used_fraction_by_level": [0.85, 0.9, 1.0, 1.0]}}
    r = row(8, 4, "tokenizer only", 2.0, results)
    assert "mlm_accuracy" not in r and r["si_sdri_db"] == {} and r["inpainting"] == {}
    table = markdown([r, fake_row(4, "cosine", 1.0, codebooks=1)]).splitlines()
    assert all(len(line.split("|")) == len(table[0].split("|")) for line in table)
    assert "| 8 | 4 | tokenizer only | 62.5 |" in table[2] and "85% (85 90 100 100) | - | - |" in table[2]
