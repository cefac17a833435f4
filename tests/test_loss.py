"""S_CNN (paper eq. 4) and the Fisher-z similarity loss (paper eq. 3)."""

from __future__ import annotations

import math

import torch

from simreg.train.regularizers.similarity.representation import (
    RepresentationSimilarity,
    fisher_z,
    similarity_loss,
)
from simreg.models.resnet import ResNet

torch.set_num_threads(2)
EPS = 1e-5


def test_fisher_z_finite_at_plus_minus_one():
    # z(+-1) = +-log((2 + eps) / eps) = +-12.2
    expected = math.log((2 + EPS) / EPS)
    for dtype, tol in ((torch.float64, 1e-9), (torch.float32, 1e-3)):  # float32: 1 - s + eps rounds
        s = torch.tensor([-1.0, 1.0], dtype=dtype, requires_grad=True)
        z = fisher_z(s, EPS)
        assert torch.all(torch.isfinite(z))
        torch.testing.assert_close(
            z.detach(), torch.tensor([-expected, expected], dtype=dtype), rtol=tol, atol=0
        )
        z.sum().backward()
        assert torch.all(torch.isfinite(s.grad))


def test_similarity_loss_finite_at_extremes():
    s_cnn = torch.tensor([1.0, -1.0, 1.0, -1.0, 0.3], requires_grad=True)
    target = torch.tensor([-1, 1, 1, -1, 0], dtype=torch.int8)
    loss = similarity_loss(s_cnn, target, EPS)
    assert torch.isfinite(loss)
    assert loss > 0
    loss.backward()
    assert torch.all(torch.isfinite(s_cnn.grad))


def test_similarity_loss_zero_at_target():
    target = torch.tensor([-1.0, -0.5, 0.0, 0.25, 0.9, 1.0])
    loss = similarity_loss(target.clone(), target, EPS)
    assert loss.item() == 0.0
    # and positive away from it, the mean of squared z differences
    s = torch.tensor([0.0, 0.5])
    t = torch.tensor([0.5, 0.5])
    expected = (fisher_z(torch.tensor(0.0), EPS) - fisher_z(torch.tensor(0.5), EPS)) ** 2 / 2
    torch.testing.assert_close(similarity_loss(s, t, EPS), expected)


def test_fisher_z_is_twice_atanh():
    s = torch.linspace(-0.9, 0.9, 181, dtype=torch.float64)
    torch.testing.assert_close(fisher_z(s, EPS), 2 * torch.atanh(s), rtol=0, atol=1e-4)


def test_fisher_z_clamps_outside_range():
    z = fisher_z(torch.tensor([1.0 + 1e-6, -1.0 - 1e-6]), EPS)
    torch.testing.assert_close(z, fisher_z(torch.tensor([1.0, -1.0]), EPS))


def test_gamma_starts_uniform():
    head = RepresentationSimilarity([4, 4, 8, 16, 32])
    torch.testing.assert_close(head.gamma, torch.full((5,), 0.2))
    torch.testing.assert_close(head.gamma.sum(), torch.tensor(1.0))


def test_gamma_is_softmax_and_sums_to_one():
    head = RepresentationSimilarity([2, 3, 4])
    with torch.no_grad():
        head.gamma_logits.copy_(torch.tensor([0.0, 1.0, -2.0]))
    torch.testing.assert_close(head.gamma.sum(), torch.tensor(1.0))
    assert head.gamma[1] > head.gamma[0] > head.gamma[2]


def test_s_cnn_is_gamma_weighted_cosine():
    """With zero running means (eval mode), S_CNN = sum_l gamma_l cos(f_l(a), f_l(b))."""
    g = torch.Generator().manual_seed(0)
    feats_a = [torch.randn(3, 2, 4, 4, generator=g), torch.randn(3, 5, 2, 2, generator=g)]
    feats_b = [torch.randn(3, 2, 4, 4, generator=g), torch.randn(3, 5, 2, 2, generator=g)]
    head = RepresentationSimilarity([2, 5]).eval()
    with torch.no_grad():
        head.gamma_logits.copy_(torch.tensor([0.3, -0.4]))
    gamma = torch.softmax(torch.tensor([0.3, -0.4]), 0)
    expected = sum(
        gamma[k]
        * torch.nn.functional.cosine_similarity(feats_a[k].flatten(1), feats_b[k].flatten(1), dim=1)
        for k in range(2)
    )
    torch.testing.assert_close(head(feats_a, feats_b), expected)
    # identical features give S_CNN = 1
    torch.testing.assert_close(head(feats_a, feats_a), torch.ones(3))


def test_gradients_reach_gamma_and_conv_weights():
    torch.manual_seed(0)
    model = ResNet("resnet18", in_channels=1, n_classes=10, width=4)
    head = RepresentationSimilarity([4, 4, 8, 16, 32])
    g = torch.Generator().manual_seed(1)
    a = torch.rand(6, 1, 8, 8, generator=g)
    b = torch.rand(6, 1, 8, 8, generator=g)
    s_cnn = head(model.features(a), model.features(b))
    assert s_cnn.shape == (6,)
    target = torch.tensor([1, -1, 0, 1, -1, 0], dtype=torch.int8)
    similarity_loss(s_cnn, target, EPS).backward()
    assert head.gamma_logits.grad is not None
    assert torch.all(torch.isfinite(head.gamma_logits.grad))
    assert head.gamma_logits.grad.abs().sum() > 0
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs
    for conv in convs:  # every layer, the stem's and every stage's
        assert conv.weight.grad is not None
        assert conv.weight.grad.abs().sum() > 0
    # the classifier head is not used by S_CNN
    assert model.head.weight.grad is None


def test_running_means_change_only_in_training():
    g = torch.Generator().manual_seed(2)
    feats_a = [torch.randn(4, 3, 2, 2, generator=g) + 1.0]
    feats_b = [torch.randn(4, 3, 2, 2, generator=g) + 1.0]
    head = RepresentationSimilarity([3], mean_momentum=0.1)
    head.eval()
    head(feats_a, feats_b)
    assert torch.equal(head.running_mean_0, torch.zeros(3))
    head.train()
    head(feats_a, feats_b)
    batch_mean = torch.cat([feats_a[0], feats_b[0]]).mean(dim=(0, 2, 3))
    torch.testing.assert_close(head.running_mean_0, 0.1 * batch_mean)
    frozen = head.running_mean_0.clone()
    head.eval()
    head(feats_a, feats_b)
    assert torch.equal(head.running_mean_0, frozen)
    # the running means are saved with the head (so checkpoints restore them)
    assert "running_mean_0" in head.state_dict()


def _regularizer_on(images, target):
    """A threshold regularizer wired to fixed images and targets (what setup would read)."""
    from simreg.train.regularizers.similarity import ThresholdedPixelSimilarity

    reg = ThresholdedPixelSimilarity(reg_pairs=4, z_eps=1e-5, mean_momentum=0.1, threshold=0.5)
    reg.images, reg.target = images, target
    reg.head = RepresentationSimilarity([4, 4, 8, 16, 32], 0.1)
    return reg


def _bn_stats(model):
    return [
        t.clone()
        for name, t in model.state_dict().items()
        if name.endswith(("running_mean", "running_var"))
    ]


def test_regularization_pass_is_two_batches_of_k_as_in_the_authors_code():
    """Issue #10: side a and side b of the k pairs go through the network as two batches
    (train mode), so BatchNorm sees batches of k: same loss and same running statistics as
    two separate forwards, and not those of one fused forward of the 2k images."""
    import copy

    from simreg.models.inference import to_input
    from simreg.models.resnet import build_model
    from simreg.train.regularizers.base import Batch
    from simreg.train.regularizers.similarity.representation import similarity_loss

    torch.manual_seed(0)
    images = torch.randint(0, 256, (12, 8, 8, 1), dtype=torch.uint8)
    target = torch.rand(12, 12) * 2 - 1
    pairs = torch.tensor([[0, 5], [3, 7], [9, 2], [11, 4]])
    model = build_model("resnet18", 1, 10, width=4).train()
    two, fused = copy.deepcopy(model), copy.deepcopy(model)
    reg = _regularizer_on(images, target)
    head_two, head_fused = copy.deepcopy(reg.head), copy.deepcopy(reg.head)

    loss = reg.loss(Batch(model, None, None, [], None, None), pairs)

    feats_a = two.features(to_input(images[pairs[:, 0]]))
    feats_b = two.features(to_input(images[pairs[:, 1]]))
    expected = similarity_loss(head_two(feats_a, feats_b), target[pairs[:, 0], pairs[:, 1]], 1e-5)
    torch.testing.assert_close(loss, expected, rtol=0, atol=0)
    for got, want in zip(_bn_stats(model), _bn_stats(two)):
        torch.testing.assert_close(got, want, rtol=0, atol=0)

    feats = fused.features(to_input(images[pairs.T.reshape(-1)]))
    fused_loss = similarity_loss(
        head_fused([f[:4] for f in feats], [f[4:] for f in feats]),
        target[pairs[:, 0], pairs[:, 1]],
        1e-5,
    )
    assert not torch.allclose(fused_loss, loss)
    assert not all(torch.allclose(a, b) for a, b in zip(_bn_stats(fused), _bn_stats(model)))
