"""The hardware objectives, measured on the network as it ships.

Each objective has its module: :mod:`.size` (model size), :mod:`.memory` (working memory)
and :mod:`.flops` (FLOPs and latency). They all read one ``torch.fx`` graph made by the
one tracer, :mod:`.tracer`, which also declares the protocol of the layers it keeps whole
(:class:`~sparsemod.objectives.tracer.DeployedLayer`: sparsemod's int8 layers report the
tensors they store). :mod:`.ops` says how the cost models read a graph's nodes, and
:mod:`.measure` counts every objective from one trace.
"""
