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

# Cases with their own dataset.yaml, loaded as `--dataset` loads them (tests/test_bad_inputs.py).
BAD_INPUTS = [
    # (fixture folder, file given to --dataset (None: the folder), file named, line, message fragment)
    # ---- csv
    ("csv_unterminated_quote", None, "interactions.csv", 34, "unterminated quote"),
    ("csv_nul_in_id", None, "interactions.csv", 3, "NUL byte at column 5"),
    ("csv_empty_file", None, "interactions.csv", None, "empty file"),
    ("csv_header_only", None, "interactions.csv", None, "no interactions"),
    ("csv_missing_user_column", None, "interactions.csv", 1, "no column 'user'"),
    ("csv_bad_timestamp", None, "interactions.csv", 3, "'yesterday' is neither a number nor an ISO date"),
    ("csv_text_columns_string", None, "dataset.yaml", None, "sources[0].options.text_columns: Input should be a valid list"),
    ("csv_items_true", None, "dataset.yaml", None, "sources[0].options.items:"),
    ("csv_utf16", None, "interactions.csv", 1, "UTF-16 byte-order mark"),
    ("csv_bom_mid_file", None, "interactions.csv", 6, "contains a byte-order mark"),
    ("csv_carriage_return", None, "interactions.csv", 3, "carriage return"),
    ("csv_truncated_last_line", None, "interactions.csv", 7, "the file looks truncated"),
    # ---- recbole
    ("recbole_truncated_timestamp", None, "shop.inter", 7, "'1700000' (column 'timestamp') is shorter than every"),
    ("recbole_truncated_float", None, "shop.inter", 7, "holds '1.7e', not a number"),
    ("recbole_nul_in_id", None, "shop.inter", 7, "NUL byte"),
    ("recbole_unknown_item", None, "shop.inter", 7, "unknown item id '13' in user '2'"),
    ("recbole_untyped_header", None, "shop.inter", 1, "RecBole headers are name:type"),
    ("recbole_header_only", None, "shop.inter", None, "no interactions"),
    ("recbole_bad_timestamp", None, "shop.inter", 7, "'n/a' is neither a number"),
    ("recbole_missing_column", None, "shop.inter", 1, "no column 'item_id'"),
    # ---- lcrec
    ("lcrec_sequence_not_list", None, "Shop.inter.json", 3, "expected a list of item ids, got str"),
    ("lcrec_float_item_id", None, "Shop.inter.json", 3, "item ids must be integers or strings, got 2.5"),
    ("lcrec_overflowing_id", None, "Shop.inter.json", 3, "item ids must be integers or strings, got inf"),
    ("lcrec_duplicate_user", None, "Shop.inter.json", 4, "duplicate user id '0'"),
    ("lcrec_empty_file", None, "Shop.inter.json", None, "empty file"),
    ("lcrec_nul_in_id", None, "Shop.item.json", 4, "contains a NUL byte"),
    ("lcrec_top_level_list", None, "Shop.inter.json", 1, "expected a JSON object"),
    ("lcrec_item_table_is_folder", None, "Shop.item.json", None, "expected a file (LC-Rec item table), found a folder"),
    ("lcrec_entry_not_object", None, "Shop.item.json", 3, "expected an object of text fields"),
    # ---- c2dsr
    ("c2dsr_missing_header_column", None, "item_listA_F.csv", 1, "header lacks column(s) item_attribute"),
    ("c2dsr_negative_length", None, "valid_F2.txt", 1, "must be a non-negative integer, got '-1'"),
    ("c2dsr_unterminated_quote", None, "item_listA_F.csv", 4, "unterminated quote"),
    ("c2dsr_missing_test_file", None, "test_F2.txt", None, "missing required file"),
    ("c2dsr_single_line_user", None, "train_F2.txt", 1, "user 0 has 1 line(s)"),
    ("c2dsr_bad_split_files_option", None, "dataset.yaml", None, "sources[0].options.split_files.tests:"),
    # ---- amazon2018, syncrec, unisrec
    ("amazon2018_infinite_time", None, "Toys.json", 2, "is not a finite time"),
    ("amazon2018_review_missing_field", None, "Toys.json", 2, "review lacks asin"),
    ("amazon2018_min_rating_string", None, "dataset.yaml", None, "sources[0].options.min_rating: Input should be a valid number"),
    ("syncrec_missing_header_column", None, "amazon_seq.txt", 1, "header lacks column(s) type"),
    ("syncrec_bad_time", None, "amazon_seq.txt", 3, "'soon' is neither a number"),
    ("unisrec_negative_index", None, "Shop.item2index", 2, "index '-2' is not a non-negative integer"),
    # ---- the dataset spec
    ("spec_duplicate_key", None, "dataset.yaml", 6, "duplicate key 'domain' (first given at line 5)"),
    ("spec_wrong_type", None, "dataset.yaml", None, "kcore: Input should be a valid integer"),
    ("spec_unknown_key", None, "dataset.yaml", None, "source: unknown key"),
    ("spec_unknown_format", None, "dataset.yaml", None, "sources[0].format: unknown dataset format 'parquet'"),
    ("spec_missing_path", None, "dataset.yaml", None, "sources[0].path:"),
    ("spec_empty_file", None, "dataset.yaml", None, "empty file"),
    ("spec_invalid_yaml", None, "dataset.yaml", 5, "cannot parse YAML"),
    ("spec_non_utf8", None, "dataset.yaml", 2, "not valid UTF-8"),
    ("spec_options_not_mapping", None, "dataset.yaml", None, "sources[0].options: Input should be a valid dictionary"),
    ("spec_unknown_option", None, "dataset.yaml", None, "sources[0].options.delimeter: unknown option(s) 'delimeter'"),
    ("spec_json_duplicate_key", "dataset.json", "dataset.json", 4, "duplicate key 'name'"),
    ("spec_top_level_list", None, "dataset.yaml", None, "expected a mapping"),
    ("spec_no_sources", None, "dataset.yaml", None, "sources: List should have at least 1 item"),
    ("spec_source_not_a_folder", None, "interactions.csv", None, "a c2dsr source is the folder"),
]
