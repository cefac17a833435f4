def figure_inputs(wildcards):
    grid = config["figures"][wildcards.name]
    return [paths.noise_file(k) for k in paths.grid_models(grid, config)]


def figure_params(wildcards):
    grid = config["figures"][wildcards.name]
    extra = {k: grid[k] for k in ("noise", "min_clean_ratio") if k in grid}
    return json.dumps({"title": f"{wildcards.name}: {grid['task']}", **extra})


def table_inputs(kind):
    def inputs(wildcards):
        keys = paths.table_models(wildcards.name, config)
        build = paths.noise_file if kind == "noise" else paths.metrics_file
        return [build(k) for k in keys]

    return inputs


def table_params(wildcards):
    grid = config["figures"].get("selection_plane", {})
    return json.dumps({k: grid[k] for k in ("noise", "min_clean_ratio") if k in grid})


rule figure:
    input:
        noise=figure_inputs,
    output:
        pdf="results/figures/{name}.pdf",
        png="results/figures/{name}.png",
    log:
        "results/logs/figure/{name}.log",
    params:
        figure=figure_params,
    wildcard_constraints:
        name="|".join(config["figures"]) or "no_figure",
    localrule: True
    shell:
        "simreg figure {wildcards.name} --noise {input.noise} --out {output.pdf}"
        " --params '{params.figure}' 2> {log}"


rule table:
    input:
        noise=table_inputs("noise"),
        metrics=table_inputs("metrics"),
    output:
        csv="results/tables/{name}.csv",
        md="results/tables/{name}.md",
    log:
        "results/logs/table/{name}.log",
    params:
        table=table_params,
    wildcard_constraints:
        name="|".join(paths.TABLES),
    localrule: True
    shell:
        "simreg table {wildcards.name} --noise {input.noise} --metrics {input.metrics}"
        " --out {output.csv} --params '{params.table}' 2> {log}"
