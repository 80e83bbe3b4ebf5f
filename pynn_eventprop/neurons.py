"""Neuron parameter sets shared by the tasks, benchmarks and tests (PyNN ``IF_curr_exp`` units).

:data:`WP_NEURON` is Wunderlich & Pehle's LIF neuron written as PyNN parameters:
``tau_m dV/dt = -V + I`` with ``I`` in mV (``cm = tau_m`` nF, so 1 nA of synaptic current moves
``V`` by 1 mV per ms / tau_m), ``tau_m = 20 ms``, ``tau_syn = 5 ms``, threshold 1 mV above rest,
reset to rest, no refractory period.
"""

WP_NEURON = dict(
    v_rest=0.0,
    v_reset=0.0,
    v_thresh=1.0,
    cm=20.0,
    tau_m=20.0,
    tau_syn_E=5.0,
    tau_syn_I=5.0,
    tau_refrac=0.0,
    i_offset=0.0,
)
