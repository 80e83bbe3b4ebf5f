"""Learn delays on a task that needs them; the task lives in pynn_eventprop/tasks/delays.py.

python examples/delays.py [--no-learn-delays] [--classes 3] [--epochs 20] [--out DIR]
"""

from pynn_eventprop.tasks.delays import main

if __name__ == "__main__":
    main()
