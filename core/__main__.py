"""``python -m mtrec`` (also what ``torchrun -m mtrec`` starts)."""

from mtrec.cli import main

main()
