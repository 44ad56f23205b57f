"""GPU check of the RN's reductions and patch cells: the CUDA results match the CPU ones (dense, packed/masked and
chunked paths; sum, mean, max, sum+max), forward and backward. Usage: PYTHONPATH=src python scripts/device_reduce_check.py"""
import torch

from relnet import ConvObjects, RelationNetwork

assert torch.cuda.is_available()
torch.manual_seed(0)
x, q = torch.randn(6, 9, 5, dtype=torch.double), torch.randn(6, 3, dtype=torch.double)
mask = torch.rand(6, 9) > 0.3
for reduce in ("sum", "mean", "max", "sum+max"):
    for chunk in (None, 7):
        for m in (None, mask):
            rn = RelationNetwork(object_dim=5, question_dim=3, g_dims=(8, 6), f_dims=(7,), out_dim=4, reduce=reduce,
                                 chunk_pairs=chunk, aggregate_norm="layer").double()
            xc = x.clone().requires_grad_()
            out = rn(xc, q, m)
            out.sum().backward()
            gpu = rn.cuda()
            xg = x.detach().clone().cuda().requires_grad_()
            out_g = gpu(xg, q.cuda(), None if m is None else m.cuda())
            out_g.sum().backward()
            torch.testing.assert_close(out_g.cpu(), out)
            torch.testing.assert_close(xg.grad.cpu(), xc.grad)
conv = ConvObjects(channels=(4, 4, 4, 4), downsample="patch").double().eval()
img = torch.rand(2, 3, 75, 75, dtype=torch.double)
torch.testing.assert_close(conv.cuda()(img.cuda())[0].cpu(), conv.cpu()(img)[0])
print("reductions and patch cells: CUDA matches CPU")
