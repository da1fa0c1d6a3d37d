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


def check_output(cost, output):
    """Refuse the cross-entropy with a built-in output activation other than
    sigmoid: its ln a and ln(1 - a) need every output in (0, 1).  (A layer
    defined in Python, output not a name, keeps to its own range.)"""
    if cost == "cross-entropy" and isinstance(output, str) and output != "sigmoid":
        raise ValueError(f"the cross-entropy cost needs outputs in (0, 1), as a "
                         f"sigmoid output layer gives, not a {output} one: use a sigmoid "
                         f"last layer, or the quadratic cost")
