"""mtrec-mixed-attention: MAN (Lin et al., WSDM 2024) as an mtrec plugin.

Modules: :mod:`.attention` (the three mixed-attention modules and the prediction MLPs),
:mod:`.backbone` (any registered sequence encoder as MAN's local/global encoder), :mod:`.model`
(the ``man`` encoder), :mod:`.decoder` (the ``pointwise`` decoder), :mod:`.recipes`.
"""

__version__ = "0.1.0"
