#!/bin/sh
# Phase diagram of optimal hard-label SD: compute the missing points, export the CSV, draw the map.
set -e
sdgmm sweep run docs/sweeps/phase_hard.toml --progress
sdgmm sweep export docs/sweeps/phase_hard.toml --csv docs/figures/phase_gain_hard.csv
sdgmm sweep plot docs/sweeps/phase_hard.toml --x alpha --y theta --value gain --annotate best_n_stages \
    --title "gain (eps_0SD - eps_best) / eps_0SD of optimal hard-label SD over optimal 0-SD
numbers: T* (early stopping, at most 8 stages); delta = 0.5, rho = 0.5, logistic loss" \
    --out docs/figures/phase_gain_hard.png
