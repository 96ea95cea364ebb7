namespace IdDisentangle.Tests.Fuzzing;

/// <summary>The fuzzer's own judgement of time: a reader kept busy by its input is a finding, one kept waiting by a
/// loaded machine is not.</summary>
public class FuzzerTests
{
    static Fuzzer Reading(Action<string> read, TimeSpan slow, TimeSpan hang) =>
        new(new FuzzTarget("timing", "none", "input.bin", read), 0, TestPaths.NewTempDir(), TestPaths.NewTempDir())
        {
            SlowLimit = slow,
            ExecutionLimit = hang,
        };

    static void Spin(TimeSpan span)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        double x = 1;
        while (clock.Elapsed < span)
            x = Math.Sqrt(x + 1);
        GC.KeepAlive(x);
    }

    [Fact]
    public void AReaderKeptBusyIsSlow()
    {
        var fuzzer = Reading(
            _ => Spin(TimeSpan.FromMilliseconds(600)),
            TimeSpan.FromMilliseconds(200),
            TimeSpan.FromSeconds(30)
        );
        var problem = fuzzer.Check([1, 2, 3], out var signature);
        Assert.Equal("slow", signature);
        Assert.Contains("CPU time", problem);
    }

    [Fact]
    public void AReaderKeptWaitingIsNotSlow()
    {
        var fuzzer = Reading(_ => Thread.Sleep(600), TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(30));
        Assert.Null(fuzzer.Check([1, 2, 3], out var signature));
        Assert.Equal("loaded", signature);
        Assert.True(fuzzer.LastBusy < TimeSpan.FromMilliseconds(200), $"busy {fuzzer.LastBusy}");
    }

    [Fact]
    public void AReaderThatDoesNotEndHangs()
    {
        using var release = new ManualResetEventSlim();
        var fuzzer = Reading(_ => release.Wait(), TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(300));
        var problem = fuzzer.Check([1, 2, 3], out var signature);
        release.Set();
        Assert.Equal("hang", signature);
        Assert.NotNull(problem);
    }
}
