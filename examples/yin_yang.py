"""Train Yin-Yang with EventProp (the main job); the task lives in pynn_eventprop/tasks/yin_yang.py.

python examples/yin_yang.py [--preset default|twin|quick] [--platform spinnaker2] [...]
"""

from pynn_eventprop.tasks.yin_yang import main

if __name__ == "__main__":
    main()
