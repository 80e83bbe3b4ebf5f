"""pynn_eventprop: a PyNN backend for LIF networks with exact EventProp training.

Use it like any PyNN simulator module::

    import pynn_eventprop as sim
    sim.setup(timestep=0.1)
    cells = sim.Population(10, sim.IF_curr_exp(i_offset=1.0))
    cells.record(["spikes", "v"])
    sim.run(100.0)
    block = cells.get_data()

See ``docs/user_guide.md`` for what is supported.
"""

from pyNN import errors, random, space  # noqa: F401
from pyNN.connectors import (  # noqa: F401
    AllToAllConnector,
    ArrayConnector,
    CloneConnector,
    CSAConnector,
    DisplacementDependentProbabilityConnector,
    DistanceDependentProbabilityConnector,
    FixedNumberConnector,
    FromFileConnector,
    FromListConnector,
    IndexBasedProbabilityConnector,
    MapConnector,
    OneToOneConnector,
    SmallWorldConnector,
)
from pyNN.network import Network  # noqa: F401
from pyNN.parameters import Sequence  # noqa: F401
from pyNN.random import GSLRNG, NumpyRNG, RandomDistribution  # noqa: F401
from pyNN.space import Space  # noqa: F401
from pyNN.standardmodels import StandardCellType

from .connectors import (  # noqa: F401  (PyNN's, with their arguments checked)
    FixedNumberPostConnector,
    FixedNumberPreConnector,
    FixedProbabilityConnector,
    FixedTotalNumberConnector,
)
from .control import (  # noqa: F401
    connect,
    create,
    end,
    get_current_time,
    get_max_delay,
    get_min_delay,
    get_time_step,
    initialize,
    num_processes,
    rank,
    record,
    record_gsyn,
    record_v,
    reset,
    run,
    run_for,
    run_until,
    set,
    setup,
)
from .eventprop.synapses import EventPropRule, EventPropSynapse  # noqa: F401
from .populations import Assembly, Population, PopulationView  # noqa: F401
from .projections import Projection  # noqa: F401
from .standardmodels import unavailable_models
from .standardmodels.cells import (  # noqa: F401
    IF_cond_exp,
    IF_curr_alpha,
    IF_curr_exp,
    SpikeSourceArray,
    SpikeSourcePoisson,
)
from .standardmodels.electrodes import (  # noqa: F401
    ACSource,
    DCSource,
    NoisyCurrentSource,
    StepCurrentSource,
)
from .standardmodels.synapses import StaticSynapse, TsodyksMarkramSynapse  # noqa: F401

globals().update(unavailable_models())
AlphaPSR = globals()["CondAlphaPostSynapticResponse"]
ExpPSR = globals()["CondExpPostSynapticResponse"]


def list_standard_models():
    """Names of the standard cell types this backend simulates."""
    return [
        obj.__name__
        for obj in globals().values()
        if isinstance(obj, type)
        and issubclass(obj, StandardCellType)
        and obj is not StandardCellType
    ]
