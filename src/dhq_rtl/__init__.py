"""dhq_rtl: distribution-aware Hadamard quantized INRs on FPGAs.

Layers of the package, data flowing one way:

* ``reference``: the PyTorch SIREN, the quantizers (DHQ and baselines), QAT.
* ``export`` → ``model_image``: the versioned integer model file.
* ``golden``: the numpy integer model, bit-exact specification of the datapath.
* ``gateware``: the Amaranth blocks and the accelerator core.
* ``build`` / ``sim``: bitstreams with Yosys/nextpnr, cycle-accurate simulation.
"""

__version__ = "0.1.0"
