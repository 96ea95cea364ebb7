using System.Diagnostics;
using Spectre.Console;

namespace IdDisentangle.Cli;

/// <summary>A progress bar with an items-per-second rate, the one way every long command reports progress.</summary>
internal sealed class ConsoleProgress
{
    readonly ProgressTask _task;
    readonly string _label,
        _unit;
    readonly Stopwatch _clock = Stopwatch.StartNew();
    double _done;

    ConsoleProgress(ProgressTask task, string label, string unit)
    {
        _task = task;
        _label = label;
        _unit = unit;
    }

    public void Advance(double items)
    {
        _done += items;
        _task.Increment(items);
        double rate = _done / Math.Max(1e-9, _clock.Elapsed.TotalSeconds);
        _task.Description = $"{Markup.Escape(_label)} [grey]{rate:F2} {_unit}/s[/]";
    }

    public double Elapsed => _clock.Elapsed.TotalSeconds;

    /// <summary>Runs <paramref name="work"/> with a bar of <paramref name="total"/> items.</summary>
    public static T Run<T>(string label, double total, string unit, Func<ConsoleProgress, T> work)
    {
        T result = default!;
        AnsiConsole
            .Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(
                new TaskDescriptionColumn { Alignment = Justify.Left },
                new ProgressBarColumn(),
                new PercentageColumn(),
                new ElapsedTimeColumn(),
                new RemainingTimeColumn(),
                new SpinnerColumn()
            )
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(label), maxValue: Math.Max(total, 1e-9));
                result = work(new ConsoleProgress(task, label, unit));
            });
        return result;
    }

    public static void Run(string label, double total, string unit, Action<ConsoleProgress> work) =>
        Run<int>(
            label,
            total,
            unit,
            p =>
            {
                work(p);
                return 0;
            }
        );
}
