namespace IdDisentangle.Runtime;

/// <summary>
/// Seeds derived from numbers the same way in every process and on every machine (HashCode.Combine is randomised
/// per process, so it cannot make runs repeatable across processes).
/// </summary>
internal static class StableSeed
{
    /// <summary>SplitMix64's finaliser: a well-mixed 64-bit value of <paramref name="x"/>.</summary>
    public static ulong SplitMix64(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }
}
