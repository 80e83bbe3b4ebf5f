"""Train Yin-Yang with EventProp (the main job); see pynn_eventprop/examples/yin_yang.py."""

from pynn_eventprop.examples.yin_yang import main

if __name__ == "__main__":
    main()
