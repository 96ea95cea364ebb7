namespace IdDisentangle.Tests;

public static class TensorAssert
{
    /// <summary>Same shape and every element equal.</summary>
    public static bool SameAs(this Tensor a, Tensor b) =>
        a.shape.SequenceEqual(b.shape) && (a.numel() == 0 || a.eq(b).all().item<bool>());

    public static float MaxAbsDiff(Tensor a, Tensor b)
    {
        Assert.Equal(b.shape, a.shape);
        using var d = (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max();
        return (float)d.item<double>();
    }
}
