"""kernelnn's DCT is scipy's orthonormal DCT-II, inverted exactly, differentiable."""

import numpy as np
import pytest
import scipy.fft
import torch

from kernelnn.layers.dct import dctn, idctn


@pytest.mark.parametrize("shape, dims", [((3, 7), 1), ((2, 8), 2), ((2, 5, 6), 2), ((1, 4, 4, 3), 3), ((2, 1), 1)])
def test_dct_is_scipys_orthonormal_dct_ii_and_inverts(shape, dims):
    x = torch.randn(*shape, dtype=torch.float64)
    expected = scipy.fft.dctn(x.numpy(), type=2, norm="ortho", axes=tuple(range(-dims, 0)))
    np.testing.assert_allclose(dctn(x, dims).numpy(), expected, atol=1e-12)
    torch.testing.assert_close(idctn(dctn(x, dims), dims), x)
    torch.testing.assert_close(dctn(x, dims).square().sum(), x.square().sum())  # Parseval


def test_dct_gradients():
    x = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: dctn(t, 2), (x,))
    assert torch.autograd.gradcheck(lambda t: idctn(t, 2), (x,))
