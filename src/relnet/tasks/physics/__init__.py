"""Dynamic physical systems (paper-spec section 6): balls joined by springs and rods; infer connections, count systems.

The simulator is a vectorised NumPy stand-in for the paper's MuJoCo scenes (a documented deviation); see
:mod:`relnet.tasks.physics.sim` for the world, the sampling of connections and the data schema.
"""

from relnet.tasks.physics.sim import (
    COLORS,
    PhysicsParams,
    load_or_generate,
    objects,
    plot_scene,
    rollout,
    simulate,
    system_counts,
)

__all__ = ["COLORS", "PhysicsParams", "simulate", "objects", "load_or_generate", "plot_scene", "rollout",
           "system_counts"]
