"""Kanri's benchmark: Kanri in its production shape against the bare floor, same sitting.

    make bench            # floor + Kanri under the same loads, then Kanri / floor ratios
    make bench-smoke      # a few hundred events; fails unless 0 lost, 0 duplicated, one run each
    make bench-admin      # the admin at 1,000,000 runs: list, filters, page 1000, inventory

Modules: `procs` (children, CPU, logs), `harness` (the shared loadgen and sink), `kanri`
(Kanri's processes, database and checks), `floor` (the floor's), `loads` (one load against
either target), `fake_stripe` (the development fake of the Stripe API, with a latency knob),
`setup_kanri` and `admin_scale` (Django programs run with Kanri's settings), `report`, `cli`.
"""
