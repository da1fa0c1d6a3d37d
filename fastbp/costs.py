"""Cost functions by name, and their codes in the C kernels.

quadratic:      C = 1/2 ||a - y||^2 per sample;   grad_a C = a - y
cross-entropy:  C = sum -y ln a - (1 - y) ln(1 - a);  with a sigmoid output,
                delta^L = a - y (sigma' cancels).
"""
# The codes of enum fbp_cost in csrc/fastbp_kernels.h.
CODES = {"quadratic": 0, "cross-entropy": 1}


def check_cost(cost):
    if not isinstance(cost, str) or cost not in CODES:
        raise ValueError(f"cost must be one of {sorted(CODES)}, got {cost!r}")
    return cost
