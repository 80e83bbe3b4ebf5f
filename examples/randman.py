"""Recurrent network with learned delays on Randman; the task is in pynn_eventprop/tasks/randman.py.

python examples/randman.py [--no-recurrent] [--no-learn-delays] [--epochs 20] [--out DIR]
"""

from pynn_eventprop.tasks.randman import main

if __name__ == "__main__":
    main()
