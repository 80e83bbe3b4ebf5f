"""Recurrent network with learned delays on Randman; the task is in pynn_eventprop/tasks/randman.py.

python examples/randman.py [--no-recurrent] [--no-learn-delays] [--epochs 20] [--out DIR]

Sparse input (every hidden neuron sees K = 3 random input units):
python examples/randman.py --input-fan-in 3 [--no-recurrent | --no-learn-delays] [...]

Memory variant (outputs read at a go cue 20 ms after the data window):
python examples/randman.py --go-cue 20 --recurrent-self 0.4 --recurrent-delay 10 30 [...]
"""

from pynn_eventprop.tasks.randman import main

if __name__ == "__main__":
    main()
