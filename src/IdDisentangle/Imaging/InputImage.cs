using static TorchSharp.torch;

namespace IdDisentangle.Imaging;

/// <summary>An input image that was read ([3,H,W] in [0,1]), with its path and file stem.</summary>
internal sealed record InputImage(string Path, string Stem, Tensor Image);
