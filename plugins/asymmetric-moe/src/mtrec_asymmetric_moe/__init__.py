"""mtrec-asymmetric-moe: SyNCRec (papers/syncrec.md) as mtrec components.

* encoder ``syncrec`` (:mod:`.encoder`): shared item embedding, K distinct transformer experts,
  per-domain and cross-domain gates with the asymmetric stop-gradient split, towers, BPR losses
  per domain and task, SC-MIM;
* transfer ``ntg-weighting`` (:mod:`.ntg`): the negative-transfer-gap loss correction, usable by
  any encoder whose losses come back as ``single/<domain>`` and ``cross/<domain>``;
* recipe ``syncrec`` (:mod:`.recipes`).
"""

__version__ = "0.1.0"
