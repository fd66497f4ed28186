"""The malformed-input corpus of ``tests/fixtures/malformed`` read straight through a format reader.

Shared by test_formats.py (each case through its reader), test_faults.py (each case through the
CLI) and test_bad_inputs.py (which adds the cases loaded through their own dataset.yaml).
"""

from __future__ import annotations

from pathlib import Path

MALFORMED = Path(__file__).resolve().parent / "fixtures" / "malformed"

# --------------------------------------------------------------------------------------------
# Malformed input: every problem is a DataError naming the file (and the line where there is one)

MALFORMED_CASES = [
    # (fixture folder, format, file named, line, message fragment)
    ("lcrec_truncated_json", "lcrec", "Shop.inter.json", 4, "invalid JSON"),
    ("lcrec_unknown_item", "lcrec", "Shop.inter.json", 3, "unknown item id '7' in user '1'"),
    ("lcrec_duplicate_item", "lcrec", "Shop.item.json", 4, "duplicate item id '1'"),
    ("lcrec_non_utf8", "lcrec", "Shop.item.json", 3, "not valid UTF-8"),
    ("lcrec_missing_items", "lcrec", "Shop.item.json", None, "missing required file"),
    ("recbole_wrong_columns", "recbole", "shop.inter", 4, "expected 4 tab-separated columns"),
    ("recbole_duplicate_item", "recbole", "shop.item", 4, "duplicate item id '10'"),
    ("csv_non_utf8", "csv", "interactions.csv", 3, "not valid UTF-8"),
    ("csv_wrong_columns", "csv", "interactions.csv", 3, "expected 3 columns"),
    ("csv_unknown_item", "csv", "interactions.csv", 4, "unknown item id 'i9' in user 'u2'"),
    ("c2dsr_unknown_item", "c2dsr", "train_F2.txt", 3, "unknown item id '9' in user '1'"),
    ("c2dsr_duplicate_item", "c2dsr", "item_listO_AA_F.csv", 4, "duplicate item id '1'"),
    ("c2dsr_wrong_columns", "c2dsr", "item_listO_AA_F.csv", 3, "expected 4 comma-separated columns"),
    ("amazon2018_truncated_gz", "amazon2018", "Toys_and_Games.json.gz", None, "truncated"),
    ("amazon2018_truncated_json", "amazon2018", "Toys_and_Games.json", 3, "invalid JSON"),
    ("amazon2018_duplicate_item", "amazon2018", "meta_Toys_and_Games.json", 3, "duplicate item id 'B000000001'"),
    ("unisrec_missing_item2index", "unisrec", "Shop.item2index", None, "missing required file"),
    ("unisrec_wrong_columns", "unisrec", "Shop.test.inter", 3, "expected 3 tab-separated columns"),
    ("syncrec_list_lengths", "syncrec", "amazon_seq.txt", 3, "differ in length"),
    ("csv_empty_domain", "csv", "items.csv", None, "domain(s) 'B' of the item table have no interactions"),
]

# Problems only visible once the sources are assembled into a dataset (through load_dataset).
MALFORMED_DATASET_CASES = [
    # (fixture folder, format, message fragment)
    ("csv_short_sequences", "csv", "domain(s) B have no test targets: every user's sequence there is shorter than 3"),
]
