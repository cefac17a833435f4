rule figure:
    input:
        noise=figure_inputs,
    output:
        pdf=report(
            "results/figures/{name}.pdf",
            caption="../report/figure.rst",
            category="Figures",
            subcategory="{name}",
            labels={"figure": "{name}", "format": "PDF"},
        ),
        png=report(
            "results/figures/{name}.png",
            caption="../report/figure.rst",
            category="Figures",
            subcategory="{name}",
            labels={"figure": "{name}", "format": "PNG"},
        ),
    log:
        "results/logs/figure/{name}.log",
    wildcard_constraints:
        name="|".join(config["figures"]) or "no_figure",
    localrule: True
    conda:
        "../../envs/simreg.yaml"
    params:
        figure=figure_params,
    shell:
        "simreg figure {wildcards.name} --noise {input.noise} --out {output.pdf}"
        " --params '{params.figure}' 2> {log}"


rule table:
    input:
        noise=table_inputs("noise"),
        metrics=table_inputs("metrics"),
    output:
        csv=report(
            "results/tables/{name}.csv",
            caption="../report/table.rst",
            category="Tables",
            subcategory="{name}",
            labels={"table": "{name}", "format": "CSV"},
        ),
        md=report(
            "results/tables/{name}.md",
            caption="../report/table.rst",
            category="Tables",
            subcategory="{name}",
            labels={"table": "{name}", "format": "Markdown"},
        ),
    log:
        "results/logs/table/{name}.log",
    wildcard_constraints:
        name="|".join(paths.TABLES),
    localrule: True
    conda:
        "../../envs/simreg.yaml"
    params:
        table=table_params,
    shell:
        "simreg table {wildcards.name} --noise {input.noise} --metrics {input.metrics}"
        " --out {output.csv} --params '{params.table}' 2> {log}"
