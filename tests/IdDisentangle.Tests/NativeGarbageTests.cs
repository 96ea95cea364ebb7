using IdDisentangle.IO;
using IdDisentangle.Models;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;

namespace IdDisentangle.Tests;

/// <summary>
/// Tests about the collector's generations run alone: a collection another test triggers while the garbage below is
/// still reachable promotes it beyond generation 0, and one it triggers during a render would hide a missing
/// release.
/// </summary>
[CollectionDefinition("garbage collector", DisableParallelization = true)]
public sealed class GarbageCollectorCollection;

[Collection("garbage collector")]
public class NativeGarbageTests
{
    /// <summary>
    /// TorchSharp's Scalar for a number (x * 0.2) is freed only by its finalizer: Release collects it and waits for
    /// the finalizers that collection queued.
    /// </summary>
    [Fact]
    public void ReleaseFinalizesWhatTheWorkLeft()
    {
        long finalizedBefore = Interlocked.Read(ref Finalizable.Count);
        var (scalar, finalizable) = Garbage();
        NativeGarbage.Release();
        Assert.False(scalar.IsAlive, "the Scalar was not collected");
        Assert.False(finalizable.IsAlive, "an object with a finalizer was not collected");
        Assert.True(
            Interlocked.Read(ref Finalizable.Count) > finalizedBefore,
            "Release returned before finalizers ran"
        );
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    static (WeakReference, WeakReference) Garbage()
    {
        Scalar s = 0.2;
        return (new WeakReference(s), new WeakReference(new Finalizable()));
    }

    sealed class Finalizable
    {
        public static long Count;

        ~Finalizable() => Interlocked.Increment(ref Count);
    }

    /// <summary>
    /// Rendering without autograd ends with a collection, so the next image's activations find the heap's holes
    /// whole; with autograd the caller's step does it.
    /// </summary>
    [Fact]
    public void RenderingReleasesTheNativeGarbageItLeaves()
    {
        using var scope = NewDisposeScope();
        using var g = StyleGan2Weights.Load(TestPaths.Fixture("stylegan2", "generator.pt"), out _);
        var w = Npy.Read(TestPaths.Fixture("stylegan2", "w.npy"))[0..1];
        int before = GC.CollectionCount(0);
        using (no_grad())
            g.Synthesize(w);
        Assert.True(GC.CollectionCount(0) > before);
    }
}

/// <summary>
/// KeptScalars' operations on two threads while a third collects and runs finalizers without pause: a Scalar left to
/// its finalizer would sooner or later be freed before libtorch reads it (TorchSharp's own x + y fails this within
/// seconds: a crash in c10::Scalar::toFloat). <see cref="ScalarLifetimeTests"/> checks the library uses nothing else.
/// </summary>
[Collection("garbage collector")]
public class ScalarLifetimeUnderCollectionsTests
{
    [Fact]
    public void KeptScalarsSurviveCollectionsOnAnotherThread()
    {
        using var x = randn([1, 64, 64, 64], generator: new torch.Generator(seed: 5));
        using var y = randn([1, 64, 64, 64], generator: new torch.Generator(seed: 6));
        Tensor Compute()
        {
            var a = x.Plus(y).LeakyRelu(0.2).Clamp(-0.5, 0.5).Times(1.5).Plus(0.25);
            return a.SubtractedFrom(1).DividedBy(3.0).Minus(0.125).PlusInPlace(x).Squared().sum();
        }
        float expected;
        using (NewDisposeScope())
            expected = Compute().item<float>();
        using var done = new CancellationTokenSource();
        var collector = new Thread(() =>
        {
            while (!done.IsCancellationRequested)
            {
                GC.Collect(0, GCCollectionMode.Forced, blocking: true);
                GC.WaitForPendingFinalizers();
            }
        });
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        var workers = Enumerable
            .Range(0, 2)
            .Select(t => new Thread(() =>
            {
                for (int i = 0; i < 400; i++)
                {
                    using var scope = NewDisposeScope();
                    float got = Compute().item<float>();
                    if (got != expected)
                        failures.Add($"thread {t}, round {i}: {got} instead of {expected}");
                }
            }))
            .ToList();
        collector.Start();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        done.Cancel();
        collector.Join();
        Assert.Empty(failures);
    }
}
