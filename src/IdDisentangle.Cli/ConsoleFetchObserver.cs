using IdDisentangle.IO;
using IdDisentangle.Runtime;
using Spectre.Console;
using Spectre.Console.Cli;

namespace IdDisentangle.Cli;

/// <summary>Each fetch of a missing model gets one line saying so and a progress bar with bytes and speed.</summary>
internal sealed class ConsoleFetchObserver(string note) : IModelFetchObserver
{
    /// <summary>For fetches a command makes because it needs a model the store lacks.</summary>
    public static readonly ConsoleFetchObserver OnDemand = new(
        $"needed by this command and not in the model store; --offline or {ModelStore.OfflineVariable}=1 "
            + "forbids downloads"
    );

    /// <summary>For 'iddis models fetch'.</summary>
    public static readonly ConsoleFetchObserver Explicit = new("");

    public T Fetch<T>(string description, Func<IProgress<DownloadProgress>?, T> fetch)
    {
        string why = note.Length > 0 ? $" [grey]({Markup.Escape(note)})[/]" : "";
        AnsiConsole.MarkupLine($"[blue]fetching[/] {Markup.Escape(description)}{why}");
        bool started = false;
        try
        {
            return AnsiConsole
                .Progress()
                .AutoClear(false)
                .HideCompleted(false)
                .Columns(
                    new TaskDescriptionColumn { Alignment = Justify.Left },
                    new ProgressBarColumn(),
                    new PercentageColumn(),
                    new DownloadedColumn(),
                    new TransferSpeedColumn(),
                    new RemainingTimeColumn()
                )
                .Start(ctx =>
                {
                    started = true;
                    var task = ctx.AddTask("download", maxValue: 1);
                    task.IsIndeterminate = true;
                    var result = fetch(
                        new ImmediateProgress<DownloadProgress>(p =>
                        {
                            if (p.Total is long total && total > 0)
                            {
                                task.IsIndeterminate = false;
                                task.MaxValue = total;
                            }
                            task.Value = Math.Min(p.Received, task.MaxValue);
                        })
                    );
                    task.Value = task.MaxValue;
                    return result;
                });
        }
        catch (InvalidOperationException) when (!started)
        {
            return fetch(null); // inside another live display (Spectre allows one at a time): the line above must do
        }
    }
}

/// <summary>Sets each command's fetch policy: --offline (or IDDIS_OFFLINE) and the console's progress bars.</summary>
internal sealed class FetchPolicyInterceptor : ICommandInterceptor
{
    IDisposable? _scope,
        _pixels;

    public void Intercept(CommandContext context, CommandSettings settings)
    {
        _scope = ModelStore.UseFetchPolicy(
            settings is Commands.ComputeSettings { Offline: true },
            ConsoleFetchObserver.OnDemand
        );
        if (settings is Commands.ComputeSettings { MaxPixels: { } limit })
            _pixels =
                limit > 0
                    ? Imaging.ImageIO.UseMaxPixels(limit)
                    : throw new ArgumentException($"--max-pixels {limit}: must be positive");
    }

    public void InterceptResult(CommandContext context, CommandSettings settings, ref int result)
    {
        _scope?.Dispose();
        _scope = null;
        _pixels?.Dispose();
        _pixels = null;
    }
}
