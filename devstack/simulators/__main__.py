"""`python -m devstack.simulators`: the simulators on ORDERFLOW_SIMULATOR_PORT."""

from devstack.simulators import main

if __name__ == "__main__":
    main()
