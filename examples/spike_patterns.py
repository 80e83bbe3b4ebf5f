"""Several spikes per input neuron: spike-pattern classification; the task is in
pynn_eventprop/tasks/spike_patterns.py.

python examples/spike_patterns.py [--first-spikes] [--seed S] [--out DIR]
"""

from pynn_eventprop.tasks.spike_patterns import main

if __name__ == "__main__":
    main()
