"""IDGenRec for mtrec: textual item IDs written by a seq2seq ID generator (papers/idgenrec.md)."""
