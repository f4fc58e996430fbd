"""IR drop: the crossbar as a resistive circuit with finite wire resistance (numpy/scipy).

Circuit of one array (R rows x C columns, conductances in µS). Row i is a wire driven at its
column-0 end by the DAC voltage V_i (volts); column j is a wire held at virtual ground by its
sense amplifier past row R - 1. Every wire segment between neighbouring crosspoints, and the
segment from the driver to column 0 and from row R - 1 to the sense amplifier, has resistance
r_row (row wires) or r_col (column wires), ohms. The device (i, j) joins row node U_ij to
column node W_ij. The other ends (past column C - 1, before row 0) are open. Kirchhoff's
current law at every node:

    row node:     g_r (U_i,j-1 - U_ij) + g_r (U_i,j+1 - U_ij) = G_ij (U_ij - W_ij)
    column node:  g_c (W_i-1,j - W_ij) + g_c (W_i+1,j - W_ij) = -G_ij (U_ij - W_ij)

with g_r = 1 / r_row, g_c = 1 / r_col, U_i,-1 = V_i, W_R,j = 0 and no neighbour past an open
end. The sense amplifier of column j reads I_j = g_c W_R-1,j = sum_i G_ij (U_ij - W_ij). With
zero resistance U_ij = V_i and W_ij = 0: I = V G, the ideal product.

The circuit is linear in the voltages, so I = V T for an effective conductance matrix T (µS)
that depends on G and the wires only, not on the inputs. A tile therefore folds IR drop into
its weights once per read (``AnalogTile.set_time``), and every MVM path (GEMM, native
convolution, unfolded per-patch, torch) runs unchanged at no extra cost per input vector.

Functions:
- :class:`NodalCrossbar`: the exact reference, the sparse nodal system above factorised once
  (scipy SuperLU), solved for any batch of input voltages;
- :func:`exact_effective_conductances`: T from the exact solve of every unit input (R solves);
- :func:`decoupled_factors`: the fast approximation (O(R C), used by default): each row wire
  solved exactly as a ladder with the column wires ideal, then each column wire solved exactly
  as a ladder fed by those row voltages. Exact when r_row = 0 or r_col = 0; it neglects only
  the column wires' voltage acting back on the row wires. Measured bound:
  ||T_decoupled - T_exact||_F <= delta_row delta_col ||G||_F, delta the largest relative drop
  of the row ladders and of the column ladders alone;
- :func:`first_order_factors`: the linearisation of the same in r (node voltages from
  cumulative sums of the ideal currents), for comparison only: it is wrong by the square of
  the drop, and turns negative once r G N^2 approaches 1.

G_eff = G x factor, factor in (0, 1] (decoupled). Error against the exact solve:
``examples/ir_drop_error.py`` and docs/physics.md.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from aimcsim.validation import check_choice, check_finite, check_float

#: Upper limit of a wire segment's resistance, ohms (beyond it an array carries no signal).
MAX_SEGMENT_OHM = 1e6
#: The ways :func:`effective_conductances` computes G_eff.
IR_DROP_METHODS = ("decoupled", "exact")
#: Microsiemens per siemens: wire conductances enter the nodal system in µS.
US_PER_S = 1e6
#: Unit input vectors solved at once by :func:`exact_effective_conductances`.
_SOLVE_CHUNK = 64


def check_conductances(conductances, name: str = "conductances") -> np.ndarray:
    """A (..., R, C) array of finite conductances >= 0 µS, as float64."""
    g = np.asarray(conductances, dtype=np.float64)
    if g.ndim < 2 or min(g.shape[-2:]) < 1:
        raise ValueError(f"{name} must have shape (..., rows, cols), got {g.shape}")
    check_finite(g, name)
    if (g < 0).any():
        raise ValueError(f"{name} must be >= 0 µS, got a minimum of {g.min()}")
    return g


def check_resistance(value, name: str) -> float:
    """A wire segment resistance in ohms: finite, 0 to :data:`MAX_SEGMENT_OHM`."""
    return check_float(value, name, 0, MAX_SEGMENT_OHM)


class NodalCrossbar:
    """Exact nodal solve of one crossbar array with finite wire resistance (module docstring).

    The conductance matrix of the circuit is assembled and LU-factorised once (scipy SuperLU);
    :meth:`currents` then solves for any batch of input voltages. Unknowns are the row nodes
    (when r_row > 0) and the column nodes (when r_col > 0); a zero-resistance wire is a
    perfect conductor and its nodes are known (U = V or W = 0).

    Args:
        conductances: (R, C) device conductances, µS (>= 0).
        r_row_ohm: resistance of one row-wire segment, ohms (>= 0).
        r_col_ohm: resistance of one column-wire segment, ohms (>= 0).
    """

    def __init__(self, conductances: np.ndarray, r_row_ohm: float, r_col_ohm: float) -> None:
        g = check_conductances(conductances)
        if g.ndim != 2:
            raise ValueError(f"conductances must be 2-D (rows, cols), got shape {g.shape}")
        self.g = g
        self.r_row = check_resistance(r_row_ohm, "r_row_ohm")
        self.r_col = check_resistance(r_col_ohm, "r_col_ohm")
        self.rows, self.cols = g.shape
        self._lu = None
        if self.r_row > 0 or self.r_col > 0:
            # the matrix is symmetric positive definite: a symmetric fill-reducing ordering
            # and diagonal pivots (about half the fill of the default column ordering)
            self._lu = spla.splu(self._system().tocsc(), permc_spec="MMD_AT_PLUS_A",
                                 diag_pivot_thresh=0.0, options={"SymmetricMode": True})

    # ------------------------------------------------------------------ assembly
    def _indices(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Unknown index of every row node U_ij and column node W_ij (None: not unknown)."""
        cells = np.arange(self.rows * self.cols).reshape(self.rows, self.cols)
        u = w = None
        if self.r_row > 0 and self.r_col > 0:
            u, w = 2 * cells, 2 * cells + 1  # interleaved: a cell's two nodes are neighbours
        elif self.r_row > 0:
            u = cells
        else:
            w = cells
        return u, w

    def _system(self) -> sp.coo_matrix:
        """The symmetric positive-definite conductance matrix of the unknown nodes, µS."""
        u, w = self._indices()
        g = self.g
        entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

        def edge(a: np.ndarray, b: np.ndarray, value) -> None:  # conductance between unknowns
            value = np.broadcast_to(value, a.shape).ravel()
            a, b = a.ravel(), b.ravel()
            entries.extend([(a, a, value), (b, b, value), (a, b, -value), (b, a, -value)])

        def to_known(a: np.ndarray, value) -> None:  # conductance to a node of known voltage
            entries.append((a.ravel(), a.ravel(), np.broadcast_to(value, a.shape).ravel()))

        if u is not None:
            g_r = US_PER_S / self.r_row
            edge(u[:, :-1], u[:, 1:], g_r)
            to_known(u[:, 0], g_r)  # the driver
        if w is not None:
            g_c = US_PER_S / self.r_col
            edge(w[:-1], w[1:], g_c)
            to_known(w[-1], g_c)  # the sense amplifier (virtual ground)
        if u is not None and w is not None:
            edge(u, w, g)
        elif u is not None:
            to_known(u, g)  # column nodes at ground
        else:
            to_known(w, g)  # row nodes at the driver voltage
        rows, cols, values = (np.concatenate(parts) for parts in zip(*entries))
        n = self.rows * self.cols * (2 if u is not None and w is not None else 1)
        return sp.coo_matrix((values, (rows, cols)), shape=(n, n))

    # ------------------------------------------------------------------ solving
    def node_voltages(self, voltages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(U, W): row and column node voltages (N, R, C), volts, for inputs (N, R) volts."""
        v = self._check_voltages(voltages)
        n = v.shape[0]
        u_idx, w_idx = self._indices()
        if self._lu is None:
            return (np.broadcast_to(v[:, :, None], (n, self.rows, self.cols)).copy(),
                    np.zeros((n, self.rows, self.cols)))
        rhs = np.zeros((self._lu.shape[0], n))
        if u_idx is not None:
            rhs[u_idx[:, 0]] = (US_PER_S / self.r_row) * v.T
        else:
            rhs[w_idx] = self.g[:, :, None] * v.T[:, None, :]
        z = self._lu.solve(rhs)
        u = (z[u_idx].transpose(2, 0, 1) if u_idx is not None
             else np.broadcast_to(v[:, :, None], (n, self.rows, self.cols)).copy())
        w = z[w_idx].transpose(2, 0, 1) if w_idx is not None else np.zeros_like(u)
        return u, w

    def currents(self, voltages: np.ndarray) -> np.ndarray:
        """Column currents into the sense amplifiers, µA: (N, C) for inputs (N, R) volts
        (or (C,) for (R,)): I_j = sum_i G_ij (U_ij - W_ij)."""
        single = np.ndim(voltages) == 1
        u, w = self.node_voltages(np.atleast_2d(voltages))
        i = np.einsum("rc,nrc->nc", self.g, u - w)
        return i[0] if single else i

    def _check_voltages(self, voltages) -> np.ndarray:
        v = np.asarray(voltages, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != self.rows:
            raise ValueError(f"voltages must have shape (N, {self.rows}), got {v.shape}")
        check_finite(v, "voltages")
        return v


def differential_currents(g_plus: np.ndarray, g_minus: np.ndarray, voltages: np.ndarray,
                          r_row_ohm: float, r_col_ohm: float) -> np.ndarray:
    """I+ - I- (µA) of a differential pair of arrays, two separate circuits driven by the same
    voltages (N, R) volts: the exact reference of a tile's raw output x g_max x V_read."""
    plus = NodalCrossbar(g_plus, r_row_ohm, r_col_ohm).currents(voltages)
    return plus - NodalCrossbar(g_minus, r_row_ohm, r_col_ohm).currents(voltages)


def exact_effective_conductances(conductances: np.ndarray, r_row_ohm: float,
                                 r_col_ohm: float) -> np.ndarray:
    """The exact T (R, C), µS, with I = V T: the exact solve of each unit input vector (one
    factorisation, R solves). Includes the sneak paths through the coupled wires, so T may be
    non-zero where G is 0. Cost grows as about (R C)^1.5 per factorisation: seconds for
    256 x 256, minutes for 512 x 512."""
    crossbar = NodalCrossbar(conductances, r_row_ohm, r_col_ohm)
    rows = crossbar.rows
    out = np.empty((rows, crossbar.cols))
    for start in range(0, rows, _SOLVE_CHUNK):
        stop = min(rows, start + _SOLVE_CHUNK)
        unit = np.zeros((stop - start, rows))
        unit[np.arange(stop - start), np.arange(start, stop)] = 1.0
        out[start:stop] = crossbar.currents(unit)
    return out


def decoupled_factors(conductances: np.ndarray, r_row_ohm: float,
                      r_col_ohm: float) -> np.ndarray:
    """IR-drop attenuation f (..., R, C) in (0, 1], G_eff = G f, of the decoupled model.

    Row wire i with the column nodes at ground is a ladder: from its open end,
    Y_C-1 = G_C-1 and Y_j = G_j + Y_j+1 / (1 + r_row Y_j+1) (the conductance the wire sees
    into node j and beyond), and the node voltages are U_ij = V_i u_ij with
    u_ij = u_i,j-1 / (1 + r_row Y_j), u_i,-1 = 1.

    Column wire j fed through G_ij by the row voltages U_ij is a ladder too: with A_i the
    conductance from node i towards the open end (A_0 = 0,
    A_i = (G_i-1 + A_i-1) / (1 + r_col (G_i-1 + A_i-1))) and B_i towards the sense amplifier
    (B_R-1 = 1 / r_col, B_i = (G_i+1 + B_i+1) / (1 + r_col (G_i+1 + B_i+1))), a current
    source at node i delivers the fraction k_ij = B_i / (G_i + A_i + B_i) x
    prod_{k > i} B_k / (G_k + B_k) of G_ij U_ij to the sense amplifier.

    f = u x k. Exact when r_col = 0 (k = 1) or r_row = 0 (u = 1); leading dimensions are
    independent arrays. Conductances in µS, resistances in ohms.
    """
    g = check_conductances(conductances) / US_PER_S  # siemens
    r_row = check_resistance(r_row_ohm, "r_row_ohm")
    r_col = check_resistance(r_col_ohm, "r_col_ohm")
    factor = np.ones(g.shape)
    if r_row > 0:
        factor *= _row_ladder_voltages(g, r_row)
    if r_col > 0:
        factor *= _column_ladder_transfer(g, r_col)
    return factor


def _row_ladder_voltages(g: np.ndarray, r: float) -> np.ndarray:
    """u (..., R, C): row node voltages per volt of drive with the column nodes at ground."""
    cols = g.shape[-1]
    load = np.empty(g.shape)
    load[..., -1] = g[..., -1]
    for j in range(cols - 2, -1, -1):
        beyond = load[..., j + 1]
        load[..., j] = g[..., j] + beyond / (1.0 + r * beyond)
    return np.cumprod(1.0 / (1.0 + r * load), axis=-1)


def _column_ladder_transfer(g: np.ndarray, r: float) -> np.ndarray:
    """k (..., R, C): fraction of a cell's source current G_ij U_ij that reaches the sense
    amplifier of its column."""
    rows = g.shape[-2]
    up = np.zeros(g.shape)      # A_i: towards the open end (row 0)
    down = np.empty(g.shape)    # B_i: towards the sense amplifier (past row R - 1)
    for i in range(1, rows):
        before = g[..., i - 1, :] + up[..., i - 1, :]
        up[..., i, :] = before / (1.0 + r * before)
    down[..., -1, :] = 1.0 / r
    for i in range(rows - 2, -1, -1):
        after = g[..., i + 1, :] + down[..., i + 1, :]
        down[..., i, :] = after / (1.0 + r * after)
    passing = down / (g + down)  # share of a current arriving from above that continues down
    below = np.ones(g.shape)     # prod over k > i of passing_k
    below[..., :-1, :] = np.flip(np.cumprod(np.flip(passing[..., 1:, :], -2), axis=-2), -2)
    return down / (g + up + down) * below


def first_order_factors(conductances: np.ndarray, r_row_ohm: float,
                        r_col_ohm: float) -> np.ndarray:
    """First order in the wire resistance (for comparison): f = 1 - r_row a - r_col b with
    a_ij = sum_j' G_ij' (min(j, j') + 1) (row drop: the ideal currents summed along the wire)
    and b_ij = sum_i' G_i'j (R - max(i, i')) (column rise), in siemens; the linearisation of
    :func:`decoupled_factors`. May be negative for large r G N^2."""
    g = check_conductances(conductances) / US_PER_S
    r_row = check_resistance(r_row_ohm, "r_row_ohm")
    r_col = check_resistance(r_col_ohm, "r_col_ohm")
    rows, cols = g.shape[-2:]
    j = np.arange(1, cols + 1)
    # a_j = sum_{j' <= j} G_j' (j' + 1) + (j + 1) sum_{j' > j} G_j'   (1-based j below)
    near = np.cumsum(g * j, axis=-1)
    far = g.sum(axis=-1, keepdims=True) - np.cumsum(g, axis=-1)
    a = near + j * far
    # b_i = sum_{i' >= i} G_i' (R - i') + (R - i) sum_{i' < i} G_i'   (0-based i)
    distance = (rows - np.arange(rows))[:, None]
    toward = np.flip(np.cumsum(np.flip(g * distance, -2), axis=-2), -2)
    above = np.cumsum(g, axis=-2) - g
    b = toward + distance * above
    return 1.0 - r_row * a - r_col * b


def effective_conductances(conductances: np.ndarray, r_row_ohm: float, r_col_ohm: float,
                           method: str = "decoupled") -> np.ndarray:
    """G_eff (..., R, C), µS, with I = V G_eff: ``decoupled`` (fast, G x
    :func:`decoupled_factors`) or ``exact`` (:func:`exact_effective_conductances`, one array
    at a time). Zero resistance returns the conductances unchanged."""
    g = check_conductances(conductances)
    if check_resistance(r_row_ohm, "r_row_ohm") == 0 and \
            check_resistance(r_col_ohm, "r_col_ohm") == 0:
        return g
    check_choice(method, IR_DROP_METHODS, "method")
    if method == "decoupled":
        return g * decoupled_factors(g, r_row_ohm, r_col_ohm)
    flat = g.reshape((-1,) + g.shape[-2:])
    return np.stack([exact_effective_conductances(a, r_row_ohm, r_col_ohm)
                     for a in flat]).reshape(g.shape)


# ---------------------------------------------------------------------- a tile's arrays
def block_diagonal(blocks: np.ndarray) -> np.ndarray:
    """(..., G, r, c) blocks -> the (..., G r, G c) array holding them on its diagonal (zeros,
    i.e. unused cells at 0 µS, elsewhere): the layout of a grouped tile."""
    *lead, groups, rows, cols = blocks.shape
    full = np.zeros((*lead, groups * rows, groups * cols), blocks.dtype)
    for k in range(groups):
        full[..., k * rows:(k + 1) * rows, k * cols:(k + 1) * cols] = blocks[..., k, :, :]
    return full


def diagonal_blocks(full: np.ndarray, groups: int) -> np.ndarray:
    """Inverse of :func:`block_diagonal`: the G diagonal blocks (..., G, r, c) of ``full``."""
    rows, cols = full.shape[-2] // groups, full.shape[-1] // groups
    return np.stack([full[..., k * rows:(k + 1) * rows, k * cols:(k + 1) * cols]
                     for k in range(groups)], axis=-3)


def tile_ir_drop(conductances: np.ndarray, r_row_ohm: float, r_col_ohm: float,
                 method: str = "decoupled") -> tuple[np.ndarray, np.ndarray]:
    """IR drop of a tile's differential pair: read conductances (2, G, r, c) µS (G+ and G-,
    G diagonal blocks) -> (effective conductances (2, G, r, c) µS float32, decoupled
    attenuation factors (2, G, r, c)).

    The used cells sit in the corner of the tile next to the drivers and the sense amplifiers
    (block k on rows k r .. (k + 1) r - 1 and columns k c .. (k + 1) c - 1); the unused cells
    lie at the open ends of the wires and carry no current, so the circuit is the used
    (G r) x (G c) array, with 0 µS off the diagonal blocks. The two polarities are separate
    circuits. ``exact`` keeps only the diagonal blocks of the exact T (its sneak-path terms off
    them are not computed by a grouped tile's GEMM). The factors (always the decoupled ones)
    scale the read-noise standard deviations of per-MVM sampling.
    """
    g = check_conductances(conductances)
    if g.ndim != 4 or g.shape[0] != 2:
        raise ValueError(f"conductances must have shape (2, groups, rows, cols), got {g.shape}")
    groups = g.shape[1]
    full = block_diagonal(g)
    factors = decoupled_factors(full, r_row_ohm, r_col_ohm)
    if method == "decoupled":
        effective = full * factors
    else:
        effective = effective_conductances(full, r_row_ohm, r_col_ohm, method)
    return (diagonal_blocks(effective, groups).astype(np.float32),
            diagonal_blocks(factors, groups))
