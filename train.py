"""Entry point from a checkout: `python train.py algo=... net=... data=...`."""

from tpbench.train import main

if __name__ == "__main__":
    main()
