"""sweep.py: a later sweep into the same folder adds its rows and replaces only those it redoes."""
from sweep import markdown, merge


def fake_row(k, variant, bass):
    return {"k": k, "variant": variant, "minutes": 1.0, "si_sdr_db": 9.0, "mrstft": 3.0, "codes_used": 1.0,
            "tokens_per_second": 16000 / 2 ** k, "seconds_per_512": 512 * 2 ** k / 16000, "mlm_accuracy": 0.3,
            "unigram_accuracy": 0.1, "neighbour_accuracy": 0.2, "si_sdri_db": {"bass": bass}}


def test_merge_keeps_other_ks_and_replaces_redone_ones():
    earlier = [fake_row(4, "cosine", 1.0), fake_row(4, "bert", -2.0), fake_row(6, "cosine", 3.0)]
    later = [fake_row(6, "cosine", 5.0), fake_row(5, "cosine", 4.0)]
    rows = merge(earlier, later)
    assert [(r["k"], r["variant"]) for r in rows] == [(4, "cosine"), (4, "bert"), (5, "cosine"), (6, "cosine")]
    assert rows[-1]["si_sdri_db"]["bass"] == 5.0  # the redone k = 6 row is the new one
    table = markdown(rows).splitlines()
    assert len(table) == 2 + 4 and "+5.00" in table[-1] and "| 6 | cosine | 250 |" in table[-1]
